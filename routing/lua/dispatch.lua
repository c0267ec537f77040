-- Routing core, part 2 of 3: the assignment. Callers are taken in global order (the merge of
-- the queue heads by score, then arrival); each gets the best eligible available handler(s):
-- its own languages first, then (after FALLBACK_AFTER s of waiting) its fallback languages;
-- lowest level first; then the strategy (the index order, or round-robin/random/ring-all).
-- Calls and conversations wait in one global order (priority, then age, across channels); a
-- conversation goes to the conversation indexes, where fewer open conversations come before
-- the strategy within a level (the "band": level, and load for conversations).

local function level_range(first_score, unit)
  local lo = math.floor(tonumber(first_score) / unit) * unit
  return lo, "(" .. string.format("%.17g", lo + unit)
end

local function pick(key, first, unit)
  -- first = {id, score} heads the index: the best band's best handler by the index order
  if STRATEGY == "ring-all" then
    local lo, hi = level_range(first[2], unit)
    return call("ZRANGEBYSCORE", key, lo, hi, "LIMIT", 0, RING_MAX)
  end
  if STRATEGY == "random" then
    local lo, hi = level_range(first[2], unit)
    local r = math.random(call("ZCOUNT", key, lo, hi)) - 1
    return call("ZRANGE", key, r, r)
  end
  if STRATEGY == "round-robin" then
    local last = call("HMGET", P .. "rr", "ord", "id")
    if last[1] then
      -- the next one after (order, id) of the handler offered last; then from the top
      local lo, hi = level_range(first[2], unit)
      local from = lo + tonumber(last[1])
      local cand = call("ZRANGEBYSCORE", key, from, hi, "WITHSCORES", "LIMIT", 0, 8)
      for i = 1, #cand, 2 do
        if tonumber(cand[i + 1]) > from or cand[i] > last[2] then return {cand[i]} end
      end
      local after = call("ZRANGEBYSCORE", key, "(" .. string.format("%.17g", from), hi,
                         "LIMIT", 0, 1)
      if after[1] then return after end
    end
  end
  return {first[1]}
end

local function choose(lang, kind, cid, ek)
  -- returns handler ids, language_fallback; nil when nobody can take this caller now
  local own, fb, unit = "ix:", "fx:", LEVEL
  if ek == "m:" then own, fb, unit = "cx:", "cf:", LOAD end
  local key = P .. own .. lang .. ":" .. kind
  local first = call("ZRANGE", key, 0, 0, "WITHSCORES")
  if first[1] then return pick(key, first, unit), false end
  key = P .. fb .. lang .. ":" .. kind
  first = call("ZRANGE", key, 0, 0, "WITHSCORES")
  if not first[1] then return nil end
  if NOW - tonumber(call("HGET", P .. ek .. cid, "enq")) < FALLBACK_AFTER then return nil end
  return pick(key, first, unit), true
end

local function offer(cid, member, q, hids, fallback)
  -- a call: exclusive (the call indexes hold no handler with a conversation offer pending)
  call("ZREM", P .. "q:" .. q, member)
  call("HSET", P .. "c:" .. cid, "st", "offered", "hs", table.concat(hids, ","),
       "fb", fallback and "1" or "0", "at", NOW_S)
  for _, hid in ipairs(hids) do
    deindex(hid)
    call("HSET", P .. "h:" .. hid, "pr", "offered", "c", cid, "at", NOW_S, "since", NOW_S)
    call("ZADD", P .. "offers", NOW, hid)
  end
  if STRATEGY == "round-robin" then
    call("HSET", P .. "rr", "ord", profile(hids[1]).ord, "id", hids[1])
  end
end

local function offer_chat(mid, member, q, hids, fallback)
  -- a conversation: each handler's load grows by one (they stay available, but get no call
  -- while it is pending)
  call("ZREM", P .. "q:" .. q, member)
  call("HSET", P .. "m:" .. mid, "st", "offered", "hs", table.concat(hids, ","),
       "fb", fallback and "1" or "0", "at", NOW_S)
  for _, hid in ipairs(hids) do
    call("SADD", P .. "ho:" .. hid, mid)
    call("ZADD", P .. "coffers", NOW, hid .. "/" .. mid)
    call("HSET", P .. "h:" .. hid, "cat", NOW_S)
    index(hid)
  end
  if STRATEGY == "round-robin" then
    call("HSET", P .. "rr", "ord", profile(hids[1]).ord, "id", hids[1])
  end
end

local function servable_queues(qset, avail, keys, available)
  -- the queues some available handler could take; with few handlers available
  -- (the usual event: one became free) this skips most queues without touching them
  local queues = call("SMEMBERS", P .. qset)
  if available > 8 then return queues end
  local pairs_ = {}
  for _, hid in ipairs(call("SMEMBERS", P .. avail)) do
    for _, sfx in ipairs(profile(hid)[keys]) do pairs_[string.sub(sfx, 4)] = true end
  end
  local out = {}
  for _, q in ipairs(queues) do
    if pairs_[string.match(q, "^[^:]+:[^:]+")] then out[#out + 1] = q end
  end
  return out
end

local function dispatch(max_offers)
  local offers = {}
  if max_offers <= 0 then return offers end
  ensure() -- first: a new strategy or capacity may change who is available for what
  local calls, chats = call("SCARD", P .. "avail"), call("SCARD", P .. "cavail")
  if calls + chats == 0 then return offers end
  local heads = {}
  local function head(q, ek)
    local h = call("ZRANGE", P .. "q:" .. q, 0, 0, "WITHSCORES")
    if h[1] then heads[#heads + 1] = {q = q, m = h[1], s = tonumber(h[2]), ek = ek} end
  end
  if calls > 0 then
    for _, q in ipairs(servable_queues("queues", "avail", "keys", calls)) do head(q, "c:") end
  end
  if chats > 0 then
    for _, q in ipairs(servable_queues("cqueues", "cavail", "ckeys", chats)) do head(q, "m:") end
  end
  if STRATEGY == "random" then math.randomseed(SEED) end
  while #offers < max_offers and calls + chats > 0 do
    local best = nil
    for _, h in ipairs(heads) do
      if h.m and (best == nil or h.s < best.s or (h.s == best.s and h.m < best.m)) then
        best = h
      end
    end
    if best == nil then break end
    local cid = string.sub(best.m, SEQ_WIDTH + 2)
    local lang, kind = string.match(best.q, "^([^:]+):([^:]+):")
    local hids, fallback = choose(lang, kind, cid, best.ek)
    if hids and hids[1] then
      local channel = "chat"
      if best.ek == "c:" then
        channel = "voice"
        offer(cid, best.m, best.q, hids, fallback)
      else
        offer_chat(cid, best.m, best.q, hids, fallback)
      end
      offers[#offers + 1] = {cid, hids, fallback, call("HGET", P .. best.ek .. cid, "enq"),
                             channel}
      local h = call("ZRANGE", P .. "q:" .. best.q, 0, 0, "WITHSCORES")
      best.m, best.s = h[1], tonumber(h[2])
      calls, chats = call("SCARD", P .. "avail"), call("SCARD", P .. "cavail")
    else
      best.m = nil -- nobody can take this queue's head, so nobody can take those behind it
    end
  end
  return offers
end
