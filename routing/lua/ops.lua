-- Routing core, part 3 of 3: the operations, one chunk each ("--@op name" starts a chunk).
-- A chunk defines run(); the "--@entry" chunk ends every script and answers cjson
-- [result, offers], offers being those made by the dispatch that may follow the operation.

--@op enqueue
local function run()
  local cid = ARGV[A]
  local ck = P .. "c:" .. cid
  local st = call("HGET", ck, "st")
  if st then return {state = st, position = position(cid)} end
  if MAX_QUEUE > 0 and waiting_count() >= MAX_QUEUE then return {full = true} end
  local seq = string.format("%0" .. SEQ_WIDTH .. "d", call("INCR", P .. "seq"))
  call("HSET", ck, "st", "waiting", "lang", ARGV[A + 1], "kind", ARGV[A + 2],
       "prio", ARGV[A + 3], "enq", ARGV[A + 4], "sc", ARGV[A + 5], "q", ARGV[A + 6],
       "seq", seq, "hs", "", "h", "", "fb", "", "at", "")
  call("SADD", P .. "callers", cid)
  queue_add(cid)
  return {state = "new", position = position(cid)}
end

--@op requeue
local function run()
  local cid = ARGV[A]
  local c = call("HMGET", P .. "c:" .. cid, "st", "hs", "h")
  local released = {}
  if c[1] == "offered" then
    released = release_all(cid, split(c[2]))
  elseif c[1] == "connected" then
    -- the bridge failed after the accept: the handler is free again (or takes the presence
    -- they asked for during the call)
    local hid = c[3]
    if holds(hid, cid, "on_call") then
      local nxt = call("HMGET", P .. "h:" .. hid, "next", "nrsn")
      if nxt[1] and nxt[1] ~= "" then set_state(hid, nxt[1], nxt[2]) else make_available(hid) end
      released = {hid}
    end
  else
    return {requeued = false, released = {}}
  end
  back_to_waiting(cid)
  return {requeued = true, released = released}
end

--@op restore_call
local function run()
  -- the reconciler after Redis lost its state: a call the database says is connected
  local cid, hid = ARGV[A], ARGV[A + 1]
  local ck, hk = P .. "c:" .. cid, P .. "h:" .. hid
  local pr = call("HGET", hk, "pr")
  if not pr or call("EXISTS", ck) == 1 then return {restored = false} end
  if pr ~= "available" and pr ~= "break" and pr ~= "offline" then return {restored = false} end
  local seq = string.format("%0" .. SEQ_WIDTH .. "d", call("INCR", P .. "seq"))
  call("HSET", ck, "st", "connected", "lang", ARGV[A + 2], "kind", ARGV[A + 3],
       "prio", ARGV[A + 4], "enq", ARGV[A + 5], "sc", ARGV[A + 6], "q", ARGV[A + 7],
       "seq", seq, "hs", "", "h", hid, "fb", "", "at", NOW_S)
  call("SADD", P .. "callers", cid)
  local rsn = call("HGET", hk, "rsn") or ""
  if pr == "available" then deindex(hid) end
  for _, pair in ipairs(drop_chat_offers(hid)) do dropped[#dropped + 1] = pair end
  local nxt = pr == "available" and "" or pr
  call("HSET", hk, "pr", "on_call", "c", cid, "since", NOW_S, "at", "", "next", nxt,
       "nrsn", pr == "available" and "" or rsn)
  call("ZREM", P .. "offers", hid)
  return {restored = true}
end

--@op remove
local function run()
  local cid = ARGV[A]
  local ck = P .. "c:" .. cid
  local c = call("HMGET", ck, "st", "hs", "h")
  if not c[1] then return {previous = false, handlers = {}, removed = false} end
  if c[1] == "connected" then return {previous = c[1], handlers = {c[3]}, removed = false} end
  local hids = {}
  if c[1] == "waiting" then queue_del(cid) else hids = release_all(cid, split(c[2])) end
  call("DEL", ck)
  call("SREM", P .. "callers", cid)
  return {previous = c[1], handlers = hids, removed = true}
end

--@op upsert
local function run()
  local hid = ARGV[A]
  local hk = P .. "h:" .. hid
  local pr = call("HGET", hk, "pr")
  if pr == "available" then deindex(hid) end
  call("HSET", hk, "langs", ARGV[A + 1], "skills", ARGV[A + 2], "fbl", ARGV[A + 3],
       "lvl", ARGV[A + 4], "ord", ARGV[A + 5])
  profiles[hid] = nil
  if not pr then
    call("HSET", hk, "pr", "offline", "rsn", "", "since", NOW_S, "c", "", "at", "",
         "next", "", "nrsn", "", "end", "", "av", "", "calls", "0", "talk", "0", "sday", "",
         "miss", "0")
    call("SADD", P .. "handlers", hid)
  end
  if pr == "available" then index(hid) end
  return {created = not pr}
end

--@op presence
local function run()
  local hid, want, reason = ARGV[A], ARGV[A + 1], ARGV[A + 2]
  local hk = P .. "h:" .. hid
  local cur = call("HGET", hk, "pr")
  if not cur then return {unknown = true} end
  local res = {previous = cur, current = cur, withdrawn = false, deferred = false,
               withdrawn_chats = dropped}
  if cur == "on_call" then
    -- the call goes on; what they asked for applies when their wrap-up ends
    if want == "offline" or want == "break" then
      call("HSET", hk, "next", want, "nrsn", reason)
    else
      call("HSET", hk, "next", "", "nrsn", "")
    end
    res.deferred = true
    return res
  end
  if cur == want then
    if want ~= "available" then call("HSET", hk, "rsn", reason) end
    return res
  end
  if cur == "offered" then
    if want == "available" or want == "wrap_up" then return res end -- the phone rings on
    local cid = call("HGET", hk, "c")
    set_state(hid, want, reason)
    withdraw(cid, hid)
    res.withdrawn = cid
  elseif want == "available" then
    call("HSET", hk, "pr", "available", "rsn", "", "since", NOW_S, "av", NOW_S,
         "next", "", "nrsn", "")
    index(hid)
  else
    if cur == "available" then deindex(hid) end
    set_state(hid, want, reason)
  end
  res.current = want
  return res
end

--@op end_wrap_up
local function run()
  local hid = ARGV[A]
  local v = call("HMGET", P .. "h:" .. hid, "pr", "next", "nrsn", "wu")
  -- extended (extend_wrap_up): not before its new end (1 s of slack for workers' clocks)
  if v[1] ~= "wrap_up" or (tonumber(v[4]) or 0) > NOW + 1 then
    return {previous = v[1] or false, current = v[1] or false, withdrawn = false,
            deferred = false}
  end
  return {previous = v[1], current = finish_wrap_up(hid, v[2], v[3]), withdrawn = false,
          deferred = false}
end

--@op extend_wrap_up
local function run()
  -- the handler asked for more wrap-up: it ends at ARGV[A + 1] (Unix s) if that is later
  local hid, until_s = ARGV[A], ARGV[A + 1]
  local hk = P .. "h:" .. hid
  local v = call("HMGET", hk, "pr", "wu")
  if v[1] ~= "wrap_up" then return {presence = v[1] or false, until_s = false} end
  if tonumber(until_s) > (tonumber(v[2]) or 0) then
    call("HSET", hk, "wu", until_s)
    return {presence = "wrap_up", until_s = until_s}
  end
  return {presence = "wrap_up", until_s = v[2]}
end

--@op accept
local function run()
  local cid, hid = ARGV[A], ARGV[A + 1]
  local ck = P .. "c:" .. cid
  local c = call("HMGET", ck, "st", "hs", "h", "enq")
  if c[1] == "connected" and c[3] == hid then
    return {won = true, released = {}, enq = c[4], duplicate = true}
  end
  local hids = split(c[2])
  if c[1] ~= "offered" or not contains(hids, hid) or not holds(hid, cid, "offered") then
    return {won = false, released = {}}
  end
  call("HSET", ck, "st", "connected", "h", hid, "hs", "", "at", NOW_S)
  call("HSET", P .. "h:" .. hid, "pr", "on_call", "since", NOW_S, "miss", "0", "at", "")
  call("ZREM", P .. "offers", hid)
  local others = {}
  for _, h in ipairs(hids) do if h ~= hid then others[#others + 1] = h end end
  return {won = true, released = release_all(cid, others), enq = c[4]}
end

--@op decline
local function run()
  return decline_offer(ARGV[A], ARGV[A + 1], ARGV[A + 2] == "1")
end

--@op expire
local function run()
  local expired = {}
  for _, hid in ipairs(call("ZRANGEBYSCORE", P .. "offers", "-inf", NOW - tonumber(ARGV[A]))) do
    local cid = call("HGET", P .. "h:" .. hid, "c")
    local r = decline_offer(cid, hid, true)
    if r.applied then
      expired[#expired + 1] = {cid, hid, r.handler, r.caller}
    else -- not a pending offer after all: drop the stray entry
      call("ZREM", P .. "offers", hid)
    end
  end
  return expired
end

--@op complete
local function run()
  local cid, hid = ARGV[A], ARGV[A + 1]
  local ck = P .. "c:" .. cid
  local c = call("HMGET", ck, "st", "h")
  if c[1] ~= "connected" or c[2] ~= hid then return {done = false} end
  call("DEL", ck)
  call("SREM", P .. "callers", cid)
  local hk = P .. "h:" .. hid
  local v = call("HMGET", hk, "calls", "talk", "sday", "next", "nrsn")
  local calls, talk = 0, 0
  if v[3] == TODAY then calls, talk = tonumber(v[1]) or 0, tonumber(v[2]) or 0 end
  call("HSET", hk, "calls", string.format("%d", calls + 1),
       "talk", string.format("%.17g", talk + tonumber(ARGV[A + 2])), "sday", TODAY,
       "pr", "wrap_up", "rsn", "", "since", NOW_S, "end", NOW_S, "c", "", "at", "", "wu", "")
  if ARGV[A + 3] == "0" then return {done = true, presence = finish_wrap_up(hid, v[4], v[5])} end
  return {done = true, presence = "wrap_up"}
end

--@op dispatch
local function run() return {} end

--@op position
local function run() return {position = position(ARGV[A], ARGV[A + 1])} end

--@op waiting
local function run()
  -- every waiting caller (ARGV[A]: "queues") or conversation ("cqueues") as {member, score},
  -- for the client to merge
  local out = {}
  for _, q in ipairs(call("SMEMBERS", P .. ARGV[A])) do
    local raw = call("ZRANGE", P .. "q:" .. q, 0, -1, "WITHSCORES")
    for i = 1, #raw, 2 do out[#out + 1] = {raw[i], raw[i + 1]} end
  end
  return out
end

--@op count
local function run() return {waiting = waiting_count(ARGV[A])} end

--@op oldest
local function run()
  local oldest = false
  local ek = ARGV[A] == "cqueues" and "m:" or "c:"
  for _, q in ipairs(call("SMEMBERS", P .. ARGV[A])) do
    local head = call("ZRANGE", P .. "q:" .. q, 0, 0)
    if head[1] then
      local enq = tonumber(call("HGET", P .. ek .. string.sub(head[1], SEQ_WIDTH + 2), "enq"))
      if not oldest or enq < oldest then oldest = enq end
    end
  end
  return {enq = oldest}
end

--@op snapshot
local function run()
  local snap = {callers = {}, handlers = {}, queues = {}, offers = {}, indexes = {},
                meta = hash(P .. "meta"), available = call("SMEMBERS", P .. "avail"),
                chats = {}, chat_offers = {}, handler_chats = {},
                chat_available = call("SMEMBERS", P .. "cavail")}
  for _, cid in ipairs(call("SMEMBERS", P .. "callers")) do
    snap.callers[cid] = hash(P .. "c:" .. cid)
  end
  for _, mid in ipairs(call("SMEMBERS", P .. "chats")) do
    snap.chats[mid] = hash(P .. "m:" .. mid)
  end
  local seen = {}
  for _, hid in ipairs(call("SMEMBERS", P .. "handlers")) do
    snap.handlers[hid] = hash(P .. "h:" .. hid)
    snap.handler_chats[hid] = {open = call("SMEMBERS", P .. "hc:" .. hid),
                               offered = call("SMEMBERS", P .. "ho:" .. hid)}
    for _, sfx in ipairs(profile(hid).keys) do seen[sfx] = true end
    for _, sfx in ipairs(profile(hid).ckeys) do seen[sfx] = true end
  end
  for sfx, _ in pairs(seen) do
    local raw = call("ZRANGE", P .. sfx, 0, -1, "WITHSCORES")
    local entries = {}
    for i = 1, #raw, 2 do entries[#entries + 1] = {raw[i], raw[i + 1]} end
    snap.indexes[sfx] = entries
  end
  for _, qset in ipairs({"queues", "cqueues"}) do
    for _, q in ipairs(call("SMEMBERS", P .. qset)) do
      local members = call("ZRANGE", P .. "q:" .. q, 0, -1)
      if members[1] then snap.queues[q] = members end
    end
  end
  local raw = call("ZRANGE", P .. "offers", 0, -1, "WITHSCORES")
  for i = 1, #raw, 2 do snap.offers[raw[i]] = raw[i + 1] end
  raw = call("ZRANGE", P .. "coffers", 0, -1, "WITHSCORES")
  for i = 1, #raw, 2 do snap.chat_offers[raw[i]] = raw[i + 1] end
  return snap
end

-- Conversations ------------------------------------------------------------------------------

--@op enqueue_chat
local function run()
  -- a conversation waits like a call (no max_queue: a message does not overflow or time out)
  local mid = ARGV[A]
  local mk = P .. "m:" .. mid
  local st = call("HGET", mk, "st")
  if st then return {state = st, position = position(mid, "m:")} end
  local seq = string.format("%0" .. SEQ_WIDTH .. "d", call("INCR", P .. "seq"))
  call("HSET", mk, "st", "waiting", "lang", ARGV[A + 1], "kind", ARGV[A + 2],
       "prio", ARGV[A + 3], "enq", ARGV[A + 4], "sc", ARGV[A + 5], "q", ARGV[A + 6],
       "seq", seq, "hs", "", "h", "", "fb", "", "at", "")
  call("SADD", P .. "chats", mid)
  queue_add(mid, "m:")
  return {state = "new", position = position(mid, "m:")}
end

--@op restore_chat
local function run()
  -- the reconciler after Redis lost its state: a conversation the database says a handler
  -- holds is theirs again (whatever their presence; it counts towards their load)
  local mid, hid = ARGV[A], ARGV[A + 1]
  local mk = P .. "m:" .. mid
  if not call("HGET", P .. "h:" .. hid, "pr") or call("EXISTS", mk) == 1 then
    return {restored = false}
  end
  local seq = string.format("%0" .. SEQ_WIDTH .. "d", call("INCR", P .. "seq"))
  call("HSET", mk, "st", "connected", "lang", ARGV[A + 2], "kind", ARGV[A + 3],
       "prio", ARGV[A + 4], "enq", ARGV[A + 5], "sc", ARGV[A + 6], "q", ARGV[A + 7],
       "seq", seq, "hs", "", "h", hid, "fb", "", "at", NOW_S)
  call("SADD", P .. "chats", mid)
  call("SADD", P .. "hc:" .. hid, mid)
  reindex(hid)
  return {restored = true}
end

--@op accept_chat
local function run()
  local mid, hid = ARGV[A], ARGV[A + 1]
  local mk = P .. "m:" .. mid
  local c = call("HMGET", mk, "st", "hs", "h", "enq")
  if c[1] == "connected" and c[3] == hid then
    return {won = true, released = {}, enq = c[4], duplicate = true}
  end
  local hids = split(c[2])
  if c[1] ~= "offered" or not contains(hids, hid)
      or call("SISMEMBER", P .. "ho:" .. hid, mid) == 0 then
    return {won = false, released = {}}
  end
  chat_unoffer(hid, mid)
  call("SADD", P .. "hc:" .. hid, mid)
  call("HSET", mk, "st", "connected", "h", hid, "hs", "", "at", NOW_S)
  local hk = P .. "h:" .. hid
  local v = call("HMGET", hk, "cn", "csday")
  local n = v[2] == TODAY and (tonumber(v[1]) or 0) or 0
  call("HSET", hk, "cn", string.format("%d", n + 1), "csday", TODAY, "miss", "0")
  reindex(hid)
  local released = {}
  for _, h in ipairs(hids) do
    if h ~= hid and chat_unoffer(h, mid) then
      reindex(h)
      released[#released + 1] = h
    end
  end
  return {won = true, released = released, enq = c[4]}
end

--@op decline_chat
local function run()
  local r = decline_chat_offer(ARGV[A], ARGV[A + 1], ARGV[A + 2] == "1")
  r.withdrawn_chats = dropped
  return r
end

--@op expire_chats
local function run()
  local expired = {}
  local due = call("ZRANGEBYSCORE", P .. "coffers", "-inf", NOW - tonumber(ARGV[A]))
  for _, member in ipairs(due) do
    local hid, mid = string.match(member, "^([^/]+)/(.+)$")
    local r = hid and decline_chat_offer(mid, hid, true) or {applied = false}
    if r.applied then
      expired[#expired + 1] = {mid, hid, r.handler, r.caller}
    else -- not a pending offer after all (or withdrawn by a break just now): drop the entry
      call("ZREM", P .. "coffers", member)
    end
  end
  return {expired = expired, withdrawn_chats = dropped}
end

--@op end_chat
local function run()
  local mid, hid = ARGV[A], ARGV[A + 1]
  local mk = P .. "m:" .. mid
  local c = call("HMGET", mk, "st", "h")
  if c[1] ~= "connected" or c[2] ~= hid then return {done = false} end
  call("DEL", mk)
  call("SREM", P .. "chats", mid)
  call("SREM", P .. "hc:" .. hid, mid)
  reindex(hid)
  return {done = true, presence = call("HGET", P .. "h:" .. hid, "pr")}
end

--@op remove_chat
local function run()
  local mid = ARGV[A]
  local mk = P .. "m:" .. mid
  local c = call("HMGET", mk, "st", "hs", "h")
  if not c[1] then return {previous = false, handlers = {}, removed = false} end
  if c[1] == "connected" then return {previous = c[1], handlers = {c[3]}, removed = false} end
  local hids = {}
  if c[1] == "waiting" then
    queue_del(mid, "m:")
  else
    for _, h in ipairs(split(c[2])) do
      if chat_unoffer(h, mid) then
        reindex(h)
        hids[#hids + 1] = h
      end
    end
  end
  call("DEL", mk)
  call("SREM", P .. "chats", mid)
  return {previous = c[1], handlers = hids, removed = true}
end

--@op requeue_chat
local function run()
  -- back to waiting in its original place: from its offers, or from the handler holding it
  -- (they let it go: a transfer to whoever comes next, the end of their shift)
  local mid = ARGV[A]
  local c = call("HMGET", P .. "m:" .. mid, "st", "hs", "h")
  local released = {}
  if c[1] == "offered" then
    for _, h in ipairs(split(c[2])) do
      if chat_unoffer(h, mid) then
        reindex(h)
        released[#released + 1] = h
      end
    end
  elseif c[1] == "connected" then
    call("SREM", P .. "hc:" .. c[3], mid)
    reindex(c[3])
    released = {c[3]}
  else
    return {requeued = false, released = {}}
  end
  back_to_waiting(mid, "m:")
  return {requeued = true, released = released}
end

--@op chat_load
local function run()
  local hid = ARGV[A]
  return {open = call("SMEMBERS", P .. "hc:" .. hid), offered = call("SMEMBERS", P .. "ho:" .. hid)}
end

--@entry
local result = run()
local offers = {}
if NOW and MAX_OFFERS > 0 then offers = dispatch(MAX_OFFERS) end
return cjson.encode({result, offers})
