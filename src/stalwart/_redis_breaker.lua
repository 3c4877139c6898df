-- stalwart's circuit breaker on Redis: one script for every decision.
--
-- It is BreakerCore (src/stalwart/_core/circuit.py) and the windows of
-- src/stalwart/_core/windows.py written again in Lua, run atomically on the
-- server for the whole fleet: same transitions, same arithmetic (Lua numbers
-- are the same IEEE doubles), same epochs.  One call of the script is one
-- decision: admit, record, release, a manual control or a
-- read for statistics.
--
-- Keys (one Redis Cluster slot: both carry the breaker's hash tag):
--
-- KEYS[1], a hash: the state (state, generation, trips,
-- open_for, open_until, consecutive_failures, the trial counts,
-- expires_at, the window's totals, entered_<state>...), readable with
-- HGETALL.
--
-- KEYS[2], a hash: the window.  A count window keeps one field per slot
-- ("0", "1"...: the outcome's flags); a time window three per bucket
-- (c<slot>, f<slot>, s<slot>: calls, failures, slow calls).
--
-- ARGV: the operation, the time ("": the server's TIME), the window's
-- kind ("none", "count", "time"), the idle expiry in milliseconds, the
-- other twelve settings in one string, separated by spaces (see _settings
-- in src/stalwart/_shared_breaker.py), then the operation's arguments.
--
-- The reply: {decision, state, generation, incarnation, remaining, retry,
-- now, transitions, statistics}: decision 1 admitted, 2 admitted as a
-- trial, 0 refused; remaining the open period left ("" unless OPEN);
-- retry a refusal's retry_after ("" when unknown); now the time
-- the script decided at; transitions previous, state, at, recovery_time
-- for each transition it made; statistics only for read.
--
-- While the breaker is CLOSED both keys expire after the idle time (a closed
-- breaker nobody used for that long is forgotten); in any other state they
-- persist.  incarnation tells a state created afresh (after an expiry or
-- a server restart) from the one a process saw before.

local K, W = KEYS[1], KEYS[2]
local op = ARGV[1]
local now = tonumber(ARGV[2])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- The hot path: an outcome in a closed breaker without a window that does
-- not open it changes at most the failure streak (and the idle expiry).
if op == 'record' and ARGV[3] == 'none' then
  local v = redis.call('HMGET', K, 'state', 'consecutive_failures',
    'generation', 'incarnation')
  if v[1] == 'closed' then
    local streak = tonumber(v[2])
    local streak_now = streak
    if tonumber(ARGV[6]) == tonumber(v[3]) then
      if tonumber(ARGV[7]) % 2 == 1 then
        streak_now = streak + 1
      else
        streak_now = 0
      end
    end
    if streak_now < tonumber(string.match(ARGV[5], '^%S+')) then
      if streak_now ~= streak then
        redis.call('HSET', K, 'consecutive_failures',
          string.format('%d', streak_now))
      end
      redis.call('PEXPIRE', K, ARGV[4])
      return {0, 'closed', tonumber(v[3]), v[4], '', '',
        string.format('%.17g', now), {}, {}}
    end
  end
end

-- An admission while every call is admitted changes nothing.
if op == 'admit' then
  local v = redis.call('HMGET', K, 'state', 'generation', 'incarnation')
  if v[1] == 'closed' or v[1] == 'disabled' or v[1] == 'metrics_only' then
    return {1, v[1], tonumber(v[2]), v[3], '', '',
      string.format('%.17g', now), {}, {}}
  end
end

local ring = ARGV[3]
local idle_ms = tonumber(ARGV[4])
local cfg = {}
for value in string.gmatch(ARGV[5], '%S+') do cfg[#cfg + 1] = tonumber(value) end
local threshold, failure_rate, slow_rate = cfg[1], cfg[2], cfg[3]
local size, width, minimum = cfg[4], cfg[5], cfg[6]
local recovery, multiplier, cap = cfg[7], cfg[8], cfg[9]
local max_calls, success_threshold, max_wait = cfg[10], cfg[11], cfg[12]

local function fmt(x) return string.format('%.17g', x) end
local function int(x) return string.format('%d', x) end

local raw = redis.call('HGETALL', K)
local s = {}
for i = 1, #raw, 2 do s[raw[i]] = raw[i + 1] end
local function num(field, default)
  local v = s[field]
  if v then return tonumber(v) end
  return default
end

local state = s.state or 'closed'
local incarnation = s.incarnation
if not incarnation then
  local t = redis.call('TIME')
  incarnation = t[1] .. '.' .. t[2]
end
local generation = num('generation', 0)
local trips = num('trips', 0)
local open_for = num('open_for', 0)
local open_until = num('open_until', 0)
local streak = num('consecutive_failures', 0)
local taken = num('trials_taken', 0)
local trial_calls = num('trial_calls', 0)
local trial_failures = num('trial_failures', 0)
local trial_slow = num('trial_slow', 0)
local expires_at = num('expires_at', nil)
local calls = num('window_calls', 0)
local failures = num('window_failures', 0)
local slow = num('window_slow', 0)
local next_slot = num('window_next', 0)
local head = num('window_head', nil)
local transitions = {}

local function enter(new, at, recovery_time)
  local previous = state
  state = new
  generation = generation + 1
  expires_at = nil
  if previous ~= new then
    redis.call('HINCRBY', K, 'entered_' .. new, 1)
    local n = #transitions
    transitions[n + 1] = previous
    transitions[n + 2] = new
    transitions[n + 3] = fmt(at)
    transitions[n + 4] = fmt(recovery_time)
  end
end

local function open(at)
  trips = trips + 1
  if trips == 1 then
    open_for = recovery
  else
    open_for = math.min(open_for * multiplier, cap)
  end
  open_until = at + open_for
  enter('open', at, open_for)
end

local function half_open(at)
  taken, trial_calls, trial_failures, trial_slow = 0, 0, 0, 0
  enter('half_open', at, 0)
  expires_at = at + max_wait
end

local function clear_window()
  redis.call('DEL', W)
  calls, failures, slow, next_slot, head = 0, 0, 0, 0, nil
end

local function admitting(new, at)
  streak = 0
  if ring ~= 'none' then clear_window() end
  if new == 'closed' then trips = 0 end
  enter(new, at, 0)
end

local function expire()
  if expires_at and now >= expires_at then open(expires_at) end
end

-- The time window moved to t (BucketRing._advance): its current slot.
local function advance(t)
  local index = math.floor(t / width)
  if head == nil then
    head = index
  elseif index > head then
    if index - head >= size then
      clear_window()
      head = index
    else
      for absolute = head + 1, index do
        local slot = int(absolute % size)
        local c, f, w = 'c' .. slot, 'f' .. slot, 's' .. slot
        local v = redis.call('HMGET', W, c, f, w)
        calls = calls - (tonumber(v[1]) or 0)
        failures = failures - (tonumber(v[2]) or 0)
        slow = slow - (tonumber(v[3]) or 0)
        redis.call('HDEL', W, c, f, w)
      end
      head = index
    end
  else
    index = head
  end
  return int(index % size)
end

local function record_window(flags, failed, is_slow)
  if ring == 'count' then
    if calls < size then
      redis.call('HSET', W, int(calls), flags)
      calls = calls + 1
    else
      local old = tonumber(redis.call('HGET', W, int(next_slot))) or 0
      failures = failures - old % 2
      slow = slow - math.floor(old / 2) % 2
      redis.call('HSET', W, int(next_slot), flags)
      if next_slot + 1 < size then next_slot = next_slot + 1 else next_slot = 0 end
    end
  else
    local slot = advance(now)
    redis.call('HINCRBY', W, 'c' .. slot, 1)
    if failed > 0 then redis.call('HINCRBY', W, 'f' .. slot, 1) end
    if is_slow > 0 then redis.call('HINCRBY', W, 's' .. slot, 1) end
    calls = calls + 1
  end
  failures = failures + failed
  slow = slow + is_slow
end

local function rates_trip(c, f, w)
  return (failure_rate > 0 and f / c >= failure_rate)
    or (slow_rate > 0 and w / c >= slow_rate)
end

local function admits(st)
  return st == 'closed' or st == 'disabled' or st == 'metrics_only'
end

local decision, retry, statistics = 0, '', {}
expire()

if op == 'admit' then
  if admits(state) then
    decision = 1
  else
    if state == 'open' and now >= open_until then half_open(now) end
    if state == 'half_open' and taken < max_calls then
      taken = taken + 1
      decision = 2
    elseif state == 'open' then
      retry = fmt(math.max(0, open_until - now))
    elseif state == 'half_open' then
      retry = fmt(expires_at - now)
    end
  end
elseif op == 'record' then
  local epoch, flags = tonumber(ARGV[6]), tonumber(ARGV[7])
  local failed = flags % 2
  local is_slow = math.floor(flags / 2) % 2
  if epoch == generation and state ~= 'disabled' and state ~= 'open'
      and state ~= 'forced_open' then
    if state == 'half_open' then
      trial_calls = trial_calls + 1
      trial_failures = trial_failures + failed
      trial_slow = trial_slow + is_slow
      if threshold == 0 then
        if trial_calls >= max_calls then
          if rates_trip(trial_calls, trial_failures, trial_slow) then
            open(now)
          else
            admitting('closed', now)
          end
        end
      elseif failed > 0 then
        open(now)
      elseif trial_calls - trial_failures >= success_threshold then
        admitting('closed', now)
      end
    elseif ring == 'none' then
      if failed == 0 then
        streak = 0
      else
        streak = streak + 1
        if state == 'closed' and streak >= threshold then open(now) end
      end
    else
      record_window(flags, failed, is_slow)
      if state == 'closed' then
        if threshold == 0 then
          if calls >= minimum and rates_trip(calls, failures, slow) then
            open(now)
          end
        elseif failures >= threshold then
          open(now)
        end
      end
    end
  end
elseif op == 'release' then
  if tonumber(ARGV[6]) == generation and state == 'half_open' and taken > 0 then
    taken = taken - 1
  end
elseif op == 'control' then
  local action = ARGV[6]
  if action == 'force_open' then
    if state ~= 'forced_open' then enter('forced_open', now, 0) end
  elseif action == 'reset' then
    admitting('closed', now)
  elseif state ~= action then
    admitting(action, now)
  end
elseif op == 'read' then
  if ring == 'time' and state ~= 'half_open' then advance(now) end
  local entered = redis.call('HMGET', K, 'entered_closed', 'entered_open',
    'entered_half_open', 'entered_forced_open', 'entered_disabled',
    'entered_metrics_only')
  statistics = {streak, calls, failures, slow, trips, fmt(open_until),
    taken, trial_calls, trial_failures, trial_slow,
    tonumber(entered[1]) or 0, tonumber(entered[2]) or 0,
    tonumber(entered[3]) or 0, tonumber(entered[4]) or 0,
    tonumber(entered[5]) or 0, tonumber(entered[6]) or 0}
end

-- Write back only what changed (most closed calls change nothing).
local fields = {
  'state', state, 'incarnation', incarnation,
  'generation', int(generation), 'trips', int(trips),
  'open_for', fmt(open_for), 'open_until', fmt(open_until),
  'consecutive_failures', int(streak), 'trials_taken', int(taken),
  'trial_calls', int(trial_calls), 'trial_failures', int(trial_failures),
  'trial_slow', int(trial_slow), 'window_calls', int(calls),
  'window_failures', int(failures), 'window_slow', int(slow),
  'window_next', int(next_slot)}
if expires_at then
  fields[#fields + 1] = 'expires_at'
  fields[#fields + 1] = fmt(expires_at)
end
if head then
  fields[#fields + 1] = 'window_head'
  fields[#fields + 1] = fmt(head)
end
local changed = {}
for i = 1, #fields, 2 do
  if s[fields[i]] ~= fields[i + 1] then
    changed[#changed + 1] = fields[i]
    changed[#changed + 1] = fields[i + 1]
  end
end
if #changed > 0 then redis.call('HSET', K, unpack(changed)) end
if s.expires_at and not expires_at then redis.call('HDEL', K, 'expires_at') end
if s.window_head and not head then redis.call('HDEL', K, 'window_head') end
if state == 'closed' then
  redis.call('PEXPIRE', K, idle_ms)
  if ring ~= 'none' then redis.call('PEXPIRE', W, idle_ms) end
elseif s.state == 'closed' or not s.state then
  redis.call('PERSIST', K)
  redis.call('PERSIST', W)
end

local remaining = ''
if state == 'open' then remaining = fmt(open_until - now) end
return {decision, state, generation, incarnation, remaining, retry, fmt(now),
  transitions, statistics}
