-- Routing core, part 1 of 3: configuration, keys, indexes, caller and handler transitions.
-- Each operation's script is this file + dispatch.lua + that operation's chunk of ops.lua
-- (routing/core.py assembles them), so every operation runs atomically with these helpers.
-- Only ids are stored; never a phone number.
--
-- ARGV[1]: "prefix strategy fallback-after-s max-misses ring-all-max max-queue stats-utc-offset-s
-- chat-capacity call-max-chats now seed max-offers" (now "-" for read-only operations;
-- max-offers > 0: dispatch after the operation); ARGV[2..]: the operation's own arguments.
--
-- Two channels wait here: calls ("c:" entries, "queues") and conversations ("m:" entries,
-- "cqueues"; SMS, WhatsApp, Telegram). A handler's call is exclusive (presence offered/on_call/
-- wrap_up: no offer of either channel); an available handler holds up to CHAT_CAP conversations
-- ("hc:{hid}" open, "ho:{hid}" offered; both count as their load) and is offered calls while
-- no conversation offer of theirs is pending and that load is at most CALL_MAX_CHATS.

local P, STRATEGY, FALLBACK_AFTER, MAX_MISSES, RING_MAX, MAX_QUEUE, DAY_OFFSET, CHAT_CAP,
  CALL_MAX_CHATS, NOW_S, SEED, MAX_OFFERS = string.match(ARGV[1],
  "^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$")
FALLBACK_AFTER, MAX_MISSES = tonumber(FALLBACK_AFTER), tonumber(MAX_MISSES)
RING_MAX, MAX_QUEUE, DAY_OFFSET = tonumber(RING_MAX), tonumber(MAX_QUEUE), tonumber(DAY_OFFSET)
CHAT_CAP, CALL_MAX_CHATS = tonumber(CHAT_CAP), tonumber(CALL_MAX_CHATS)
local NOW = tonumber(NOW_S)
SEED, MAX_OFFERS = tonumber(SEED), tonumber(MAX_OFFERS)
local A = 2
local SEQ_WIDTH = 15 -- queue members are "<15-digit arrival sequence>:<caller id>"
local LEVEL = 1e13 -- index score = level * LEVEL + the strategy's metric (always < LEVEL)
local LOAD = 1e12 -- chat index score = level * LEVEL + load * LOAD + a metric (always < LOAD)
local QSET = {["c:"] = "queues", ["m:"] = "cqueues"} -- an entry's key prefix -> its queues

local call = redis.call

local function split(s)
  local out = {}
  if s and s ~= "" then
    for part in string.gmatch(s, "[^,]+") do out[#out + 1] = part end
  end
  return out
end

local function contains(list, x)
  for _, v in ipairs(list) do if v == x then return true end end
  return false
end

local function hash(key)
  local raw = call("HGETALL", key)
  local t = {}
  for i = 1, #raw, 2 do t[raw[i]] = raw[i + 1] end
  return t
end

-- Handler indexes ---------------------------------------------------------------------------
-- An AVAILABLE handler sits in one ZSET per (language, skill): "ix:" for its languages, "fx:"
-- for its fallback languages, scored level * LEVEL + the strategy's metric, so an index's head
-- is the lowest level's best handler. "avail" names them all.

local profiles = {} -- profile fields read in this script run (only upsert changes them)

local function index_keys(p, own, fallback)
  -- own/fallback: "ix"/"fx" (calls) or "cx"/"cf" (conversations)
  local keys, skills = {}, split(p.skills)
  for _, lang in ipairs(split(p.langs)) do
    for _, skill in ipairs(skills) do keys[#keys + 1] = own .. ":" .. lang .. ":" .. skill end
  end
  for _, lang in ipairs(split(p.fbl)) do
    for _, skill in ipairs(skills) do keys[#keys + 1] = fallback .. ":" .. lang .. ":" .. skill end
  end
  return keys
end

local function profile(hid, v)
  local p = profiles[hid]
  if not p then
    v = v or call("HMGET", P .. "h:" .. hid, "langs", "skills", "fbl", "lvl", "ord")
    p = {langs = v[1], skills = v[2], fbl = v[3], lvl = v[4], ord = v[5]}
    p.keys = index_keys(p, "ix", "fx")
    p.ckeys = index_keys(p, "cx", "cf")
    profiles[hid] = p
  end
  return p
end

local TODAY = NOW and string.format("%d", math.floor((NOW + DAY_OFFSET) / 86400))
local BY_ORDER = {["linear"] = true, ["round-robin"] = true, ["ring-all"] = true,
                  ["random"] = true}
local BY_STATS = {["fewest-calls"] = true, ["least-talk-time"] = true}

local function score(p, v)
  -- v: the handler's "end", "av", "calls", "talk", "sday" fields
  if BY_ORDER[STRATEGY] then return tonumber(p.lvl) * LEVEL + (tonumber(p.ord) or 0) end
  -- idle since: the last call's end (or offer let go), else when they became available
  local idle = tonumber(v[1]) or tonumber(v[2]) or 0
  local calls, talk = 0, 0
  if v[5] == TODAY then calls, talk = tonumber(v[3]) or 0, tonumber(v[4]) or 0 end
  local m = idle
  if STRATEGY == "fewest-calls" then
    m = math.min(calls, 990) * 1e10 + idle
  elseif STRATEGY == "least-talk-time" then
    m = math.min(math.floor(talk), 99999) * 1e7 + idle / 1000
  end
  return tonumber(p.lvl) * LEVEL + m
end

local function chat_score(p, v)
  -- v: the handler's "end", "av", "cat", "cn", "csday", "talk", "sday", load. Within a level,
  -- fewer conversations first; then the strategy, its idle clock also moved by the last
  -- conversation offered, its "fewest" counting today's accepted conversations.
  local base = tonumber(p.lvl) * LEVEL + v[8] * LOAD
  if BY_ORDER[STRATEGY] then return base + (tonumber(p.ord) or 0) end
  local idle = math.max(tonumber(v[1]) or tonumber(v[2]) or 0, tonumber(v[3]) or 0)
  local m = idle
  if STRATEGY == "fewest-calls" then
    local chats = v[5] == TODAY and (tonumber(v[4]) or 0) or 0
    m = math.min(chats, 99) * 1e10 + idle
  elseif STRATEGY == "least-talk-time" then
    local talk = v[7] == TODAY and (tonumber(v[6]) or 0) or 0
    m = math.min(math.floor(talk), 9999) * 1e8 + idle / 1000
  end
  return base + m
end

local ensured = false
local index

-- The strategy and the stats day live in "meta": a new strategy, or a new day under a strategy
-- that counts today's calls or talk time, re-scores the indexes. Checked once per script run,
-- before the indexes are touched. The day only moves forward (workers' clocks differ).
local function ensure()
  if ensured then return end
  ensured = true
  local m = call("HMGET", P .. "meta", "strategy", "day")
  local new_day = (tonumber(m[2]) or -1e18) < tonumber(TODAY)
  local chats = string.format("%d:%d", CHAT_CAP, CALL_MAX_CHATS)
  local same_chats = call("HGET", P .. "meta", "chats") == chats
  if m[1] == STRATEGY and same_chats and not (new_day and BY_STATS[STRATEGY]) then
    if new_day then call("HSET", P .. "meta", "day", TODAY) end
    return
  end
  if new_day then call("HSET", P .. "meta", "day", TODAY) end
  call("HSET", P .. "meta", "strategy", STRATEGY, "chats", chats)
  for _, hid in ipairs(call("SMEMBERS", P .. "handlers")) do
    if call("HGET", P .. "h:" .. hid, "pr") == "available" then index(hid) end
  end
end

index = function(hid)
  -- an AVAILABLE handler, (re)placed by their conversation load: in the call indexes ("avail")
  -- while no conversation offer is pending and the load is at most CALL_MAX_CHATS, in the
  -- conversation indexes ("cavail") while it is under CHAT_CAP
  ensure()
  local v = call("HMGET", P .. "h:" .. hid, "langs", "skills", "fbl", "lvl", "ord",
                 "end", "av", "calls", "talk", "sday", "cat", "cn", "csday")
  local p = profile(hid, v)
  local offered = call("SCARD", P .. "ho:" .. hid)
  local load = offered + call("SCARD", P .. "hc:" .. hid)
  -- (out of an index: its ZSETs are touched only if "avail"/"cavail" says it is in them)
  if offered == 0 and load <= CALL_MAX_CHATS then
    local s = score(p, {v[6], v[7], v[8], v[9], v[10]})
    for _, sfx in ipairs(p.keys) do call("ZADD", P .. sfx, s, hid) end
    call("SADD", P .. "avail", hid)
  elseif call("SREM", P .. "avail", hid) == 1 then
    for _, sfx in ipairs(p.keys) do call("ZREM", P .. sfx, hid) end
  end
  if load < CHAT_CAP then
    local s = chat_score(p, {v[6], v[7], v[11], v[12], v[13], v[9], v[10], load})
    for _, sfx in ipairs(p.ckeys) do call("ZADD", P .. sfx, s, hid) end
    call("SADD", P .. "cavail", hid)
  elseif call("SREM", P .. "cavail", hid) == 1 then
    for _, sfx in ipairs(p.ckeys) do call("ZREM", P .. sfx, hid) end
  end
end

local function deindex(hid)
  local p = profile(hid)
  for _, sfx in ipairs(p.keys) do call("ZREM", P .. sfx, hid) end
  for _, sfx in ipairs(p.ckeys) do call("ZREM", P .. sfx, hid) end
  call("SREM", P .. "avail", hid)
  call("SREM", P .. "cavail", hid)
end

local function reindex(hid)
  -- their conversation load changed: re-placed if available
  if call("HGET", P .. "h:" .. hid, "pr") == "available" then index(hid) end
end

-- Callers -----------------------------------------------------------------------------------
-- One ZSET per (language, kind, priority): score = enqueued_at - priority, member = arrival
-- sequence + id, so ZSET order is score then first come first served, and the head is also
-- the queue's longest waiter. "queues" names every queue used since the last reset.

-- Conversations wait the same way under "m:" entries, in queues named
-- "{lang}:{kind}:{priority}:chat" listed in "cqueues"; ek below is the entry's key prefix.

local function queue_add(cid, ek)
  ek = ek or "c:"
  local c = call("HMGET", P .. ek .. cid, "q", "sc", "seq")
  call("ZADD", P .. "q:" .. c[1], c[2], c[3] .. ":" .. cid)
  call("SADD", P .. QSET[ek], c[1])
end

local function queue_del(cid, ek)
  local c = call("HMGET", P .. (ek or "c:") .. cid, "q", "seq")
  call("ZREM", P .. "q:" .. c[1], c[2] .. ":" .. cid)
end

local function back_to_waiting(cid, ek)
  call("HSET", P .. (ek or "c:") .. cid, "st", "waiting", "hs", "", "h", "", "fb", "", "at", "")
  queue_add(cid, ek)
end

local function waiting_count(qset)
  local n = 0
  for _, q in ipairs(call("SMEMBERS", P .. (qset or "queues"))) do
    n = n + call("ZCARD", P .. "q:" .. q)
  end
  return n
end

local function position(cid, ek)
  ek = ek or "c:"
  local c = call("HMGET", P .. ek .. cid, "st", "sc", "seq")
  if c[1] ~= "waiting" then return 0 end
  local member = c[3] .. ":" .. cid
  local n = 1
  for _, q in ipairs(call("SMEMBERS", P .. QSET[ek])) do
    local qk = P .. "q:" .. q
    n = n + call("ZCOUNT", qk, "-inf", "(" .. c[2])
    for _, m in ipairs(call("ZRANGEBYSCORE", qk, c[2], c[2])) do
      if m < member then n = n + 1 end
    end
  end
  return n
end

-- Handlers ----------------------------------------------------------------------------------

local function make_available(hid, let_go)
  -- an offer ended without a call; let_go: the handler missed or rejected it (idle clock reset)
  local hk = P .. "h:" .. hid
  if let_go then call("HSET", hk, "end", NOW_S) end
  call("HSET", hk, "pr", "available", "rsn", "", "c", "", "at", "", "since", NOW_S)
  call("ZREM", P .. "offers", hid)
  index(hid)
end

-- Conversation offers: "ho:{hid}" the conversations offered to a handler, "coffers" ZSET
-- "{hid}/{conversation id}" -> offered at (ids never hold "/").

local dropped = {} -- {conversation, handler} offers withdrawn in this run by set_state

local function withdraw_offer(id, hid, ek)
  -- take one handler off a pending offer of a caller ("c:") or a conversation ("m:") (the
  -- handler's side already done); it waits again in its place if no offer is left. Returns
  -- its state.
  local key = P .. ek .. id
  local rest = {}
  for _, h in ipairs(split(call("HGET", key, "hs"))) do
    if h ~= hid then rest[#rest + 1] = h end
  end
  if #rest > 0 then
    call("HSET", key, "hs", table.concat(rest, ","))
    return "offered"
  end
  back_to_waiting(id, ek)
  return "waiting"
end

local function chat_withdraw(mid, hid)
  return withdraw_offer(mid, hid, "m:")
end

local function chat_unoffer(hid, mid)
  -- the handler's side of a conversation offer ends; true if it was pending
  call("ZREM", P .. "coffers", hid .. "/" .. mid)
  return call("SREM", P .. "ho:" .. hid, mid) == 1
end

local function drop_chat_offers(hid)
  -- the handler leaves duty: their pending conversation offers go back
  -- (each conversation waits again in its place, or stays offered to others under ring-all)
  local out = {}
  for _, mid in ipairs(call("SMEMBERS", P .. "ho:" .. hid)) do
    chat_unoffer(hid, mid)
    chat_withdraw(mid, hid)
    out[#out + 1] = {mid, hid}
  end
  return out
end

local function set_state(hid, presence, reason)
  -- any presence but available/offered/on_call: out of the indexes, no caller, no offered
  -- conversation (the open ones stay theirs)
  call("HSET", P .. "h:" .. hid, "pr", presence, "rsn", reason or "", "c", "", "at", "",
       "since", NOW_S, "next", "", "nrsn", "", "wu", "")
  call("ZREM", P .. "offers", hid)
  deindex(hid)
  for _, pair in ipairs(drop_chat_offers(hid)) do dropped[#dropped + 1] = pair end
end

local function holds(hid, cid, presence)
  local v = call("HMGET", P .. "h:" .. hid, "pr", "c")
  return v[1] == presence and v[2] == cid
end

local function withdraw(cid, hid)
  -- a caller's pending offer: see withdraw_offer
  return withdraw_offer(cid, hid, "c:")
end

local function release_all(cid, hids)
  -- the caller's offer to these handlers is over through no fault of theirs
  local released = {}
  for _, hid in ipairs(hids) do
    if holds(hid, cid, "offered") then
      make_available(hid, false)
      released[#released + 1] = hid
    end
  end
  return released
end

local function finish_wrap_up(hid, next_presence, next_reason)
  -- wrap_up over: available, or the presence asked for during the call. Returns it.
  if next_presence and next_presence ~= "" then
    set_state(hid, next_presence, next_reason)
    return next_presence
  end
  call("HSET", P .. "h:" .. hid, "pr", "available", "rsn", "", "since", NOW_S, "av", NOW_S,
       "wu", "")
  index(hid)
  return "available"
end

local function decline_offer(cid, hid, missed)
  local c = call("HMGET", P .. "c:" .. cid, "st", "hs")
  if c[1] ~= "offered" or not contains(split(c[2]), hid) or not holds(hid, cid, "offered") then
    return {applied = false}
  end
  local hk = P .. "h:" .. hid
  local presence = "available"
  local misses = tonumber(call("HGET", hk, "miss")) or 0
  if missed then misses = misses + 1 end
  if missed and MAX_MISSES > 0 and misses >= MAX_MISSES then
    presence = "break"
    set_state(hid, "break", string.format("missed %d offers in a row", misses))
    call("HSET", hk, "miss", "0", "end", NOW_S)
  else
    call("HSET", hk, "miss", string.format("%d", misses))
    make_available(hid, true)
  end
  return {applied = true, handler = presence, caller = withdraw(cid, hid)}
end

local function decline_chat_offer(mid, hid, missed)
  -- the handler let a conversation offer go (declined, or it expired: missed); it counts
  -- towards their misses in a row like a call's (max_misses: a break, their open
  -- conversations kept); the conversation waits again in its place unless offered to others
  local c = call("HMGET", P .. "m:" .. mid, "st", "hs")
  if c[1] ~= "offered" or not contains(split(c[2]), hid)
      or call("SISMEMBER", P .. "ho:" .. hid, mid) == 0 then
    return {applied = false}
  end
  chat_unoffer(hid, mid)
  local state = chat_withdraw(mid, hid)
  local hk = P .. "h:" .. hid
  local v = call("HMGET", hk, "miss", "pr")
  local misses, presence = tonumber(v[1]) or 0, v[2]
  if missed then misses = misses + 1 end
  if missed and MAX_MISSES > 0 and misses >= MAX_MISSES and presence == "available" then
    presence = "break"
    set_state(hid, "break", string.format("missed %d offers in a row", misses))
    call("HSET", hk, "miss", "0")
  else
    call("HSET", hk, "miss", string.format("%d", misses), "cat", NOW_S) -- let go: idle anew
    reindex(hid)
  end
  return {applied = true, handler = presence, caller = state}
end
