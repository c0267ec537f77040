-- Routing core, part 1 of 3: configuration, keys, indexes, caller and handler transitions.
-- Each operation's script is this file + dispatch.lua + that operation's chunk of ops.lua
-- (routing/core.py assembles them), so every operation runs atomically with these helpers.
-- Only ids are stored; never a phone number.
--
-- ARGV[1]: "prefix strategy fallback-after-s max-misses ring-all-max max-queue stats-utc-offset-s
-- now seed max-offers" (now "-" for read-only operations; max-offers > 0: dispatch after the
-- operation); ARGV[2..]: the operation's own arguments.

local P, STRATEGY, FALLBACK_AFTER, MAX_MISSES, RING_MAX, MAX_QUEUE, DAY_OFFSET, NOW_S, SEED,
  MAX_OFFERS = string.match(ARGV[1], "^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$")
FALLBACK_AFTER, MAX_MISSES = tonumber(FALLBACK_AFTER), tonumber(MAX_MISSES)
RING_MAX, MAX_QUEUE, DAY_OFFSET = tonumber(RING_MAX), tonumber(MAX_QUEUE), tonumber(DAY_OFFSET)
local NOW = tonumber(NOW_S)
SEED, MAX_OFFERS = tonumber(SEED), tonumber(MAX_OFFERS)
local A = 2
local SEQ_WIDTH = 15 -- queue members are "<15-digit arrival sequence>:<caller id>"
local LEVEL = 1e13 -- index score = level * LEVEL + the strategy's metric (always < LEVEL)

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

local function index_keys(p)
  local keys, skills = {}, split(p.skills)
  for _, lang in ipairs(split(p.langs)) do
    for _, skill in ipairs(skills) do keys[#keys + 1] = "ix:" .. lang .. ":" .. skill end
  end
  for _, lang in ipairs(split(p.fbl)) do
    for _, skill in ipairs(skills) do keys[#keys + 1] = "fx:" .. lang .. ":" .. skill end
  end
  return keys
end

local function profile(hid, v)
  local p = profiles[hid]
  if not p then
    v = v or call("HMGET", P .. "h:" .. hid, "langs", "skills", "fbl", "lvl", "ord")
    p = {langs = v[1], skills = v[2], fbl = v[3], lvl = v[4], ord = v[5]}
    p.keys = index_keys(p)
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
  if m[1] == STRATEGY and not (new_day and BY_STATS[STRATEGY]) then
    if new_day then call("HSET", P .. "meta", "day", TODAY) end
    return
  end
  if new_day then call("HSET", P .. "meta", "day", TODAY) end
  call("HSET", P .. "meta", "strategy", STRATEGY)
  for _, hid in ipairs(call("SMEMBERS", P .. "avail")) do index(hid) end
end

index = function(hid)
  ensure()
  local v = call("HMGET", P .. "h:" .. hid, "langs", "skills", "fbl", "lvl", "ord",
                 "end", "av", "calls", "talk", "sday")
  local p = profile(hid, v)
  local s = score(p, {v[6], v[7], v[8], v[9], v[10]})
  for _, sfx in ipairs(p.keys) do call("ZADD", P .. sfx, s, hid) end
  call("SADD", P .. "avail", hid)
end

local function deindex(hid)
  for _, sfx in ipairs(profile(hid).keys) do call("ZREM", P .. sfx, hid) end
  call("SREM", P .. "avail", hid)
end

-- Callers -----------------------------------------------------------------------------------
-- One ZSET per (language, kind, priority): score = enqueued_at - priority, member = arrival
-- sequence + id, so ZSET order is score then first come first served, and the head is also
-- the queue's longest waiter. "queues" names every queue used since the last reset.

local function queue_add(cid)
  local c = call("HMGET", P .. "c:" .. cid, "q", "sc", "seq")
  call("ZADD", P .. "q:" .. c[1], c[2], c[3] .. ":" .. cid)
  call("SADD", P .. "queues", c[1])
end

local function queue_del(cid)
  local c = call("HMGET", P .. "c:" .. cid, "q", "seq")
  call("ZREM", P .. "q:" .. c[1], c[2] .. ":" .. cid)
end

local function back_to_waiting(cid)
  call("HSET", P .. "c:" .. cid, "st", "waiting", "hs", "", "h", "", "fb", "", "at", "")
  queue_add(cid)
end

local function waiting_count()
  local n = 0
  for _, q in ipairs(call("SMEMBERS", P .. "queues")) do n = n + call("ZCARD", P .. "q:" .. q) end
  return n
end

local function position(cid)
  local c = call("HMGET", P .. "c:" .. cid, "st", "sc", "seq")
  if c[1] ~= "waiting" then return 0 end
  local member = c[3] .. ":" .. cid
  local n = 1
  for _, q in ipairs(call("SMEMBERS", P .. "queues")) do
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

local function set_state(hid, presence, reason)
  -- any presence but available/offered/on_call: out of the indexes, no caller
  call("HSET", P .. "h:" .. hid, "pr", presence, "rsn", reason or "", "c", "", "at", "",
       "since", NOW_S, "next", "", "nrsn", "", "wu", "")
  call("ZREM", P .. "offers", hid)
  call("SREM", P .. "avail", hid)
end

local function holds(hid, cid, presence)
  local v = call("HMGET", P .. "h:" .. hid, "pr", "c")
  return v[1] == presence and v[2] == cid
end

local function withdraw(cid, hid)
  -- take one handler off a caller's pending offer; the caller waits again (same place) if no
  -- offer is left. Returns the caller's state.
  local ck = P .. "c:" .. cid
  local rest = {}
  for _, h in ipairs(split(call("HGET", ck, "hs"))) do
    if h ~= hid then rest[#rest + 1] = h end
  end
  if #rest > 0 then
    call("HSET", ck, "hs", table.concat(rest, ","))
    return "offered"
  end
  back_to_waiting(cid)
  return "waiting"
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
