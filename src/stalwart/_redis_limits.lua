-- stalwart's rate-limiter store on Redis: one function for every algorithm.
--
-- Loaded once as a Redis Functions library (FUNCTION LOAD; its top level,
-- the helpers and the fast paths below, is built once) and run with
-- FCALL; on a server without functions, run as a script (EVALSHA), whose
-- top level is built on every call.  src/stalwart/_redis.py adds the tail
-- (register main, or return main(KEYS, ARGV)).
--
-- The arithmetic of src/stalwart/_core/limits.py, line for line (Lua
-- numbers are doubles, as Python floats are), and the store operations of
-- src/stalwart/_stores.py (MemoryStore: decide, peek, cancel, reset) on one
-- key's state.  Called by src/stalwart/_redis_limits.py.
--
-- KEYS[1]  the state (a hash; HGETALL shows it)
-- KEYS[2]  the queue of reservations (a list; one entry per waiter:
--          "id cost slot before... after...")
-- KEYS[3+] the log of each sliding-window-log part (a list; one entry per
--          granted request: "time total")
-- ARGV     op, now ("" = the server's TIME), the algorithm (one string:
--          the number of parts, then each part's kind and its four
--          parameters, separated by spaces), then the op's arguments.

-- A library's top level runs without the standard libraries (they are
-- there when its function runs): these are set by the first call.
local INF, floor, ceil, call, format

local function init()
  INF, floor, ceil = math.huge, math.floor, math.ceil
  call, format = redis.call, string.format
end

local function fmt(x)
  if x == INF then return 'inf' end
  if x == -INF then return '-inf' end
  return format('%.17g', x)
end

local function num(s)
  if s == 'inf' then return INF end
  if s == '-inf' then return -INF end
  return tonumber(s)
end

local function max(a, b)
  if b > a then return b end
  return a
end

-- math.nextafter(x, inf)
local function up(x)
  if x == INF then return x end
  if x == 0 then return 2 ^ -1074 end
  local m, e = math.frexp(x)
  local shift = e - 53
  if x < 0 and m == -0.5 then shift = shift - 1 end
  if shift < -1074 then shift = -1074 end
  return x + math.ldexp(1, shift)
end

local function earliest(fits, lo, guess)
  local t = guess
  if not (guess > lo) then t = up(lo) end
  if fits(t) then return t end
  for _ = 1, 4 do
    t = up(t)
    if fits(t) then return t end
  end
  lo = t
  local gap = math.abs(t) * 2 ^ -40 + 2 ^ -1000
  local hi = lo + gap
  while not fits(hi) do
    lo = hi
    gap = gap * 2
    hi = lo + gap
  end
  while true do
    local mid = lo + (hi - lo) / 2
    if not (lo < mid and mid < hi) then return hi end
    if fits(mid) then hi = mid else lo = mid end
  end
end

local function window_of(t, period)
  local k = floor(t / period)
  -- Window indices are exact below 2^53 (Python's are exact integers
  -- at any size: past 2^53, this one stops where the floats do).
  if k == INF or k == -INF then return k end
  while k * period > t and k - 1 ~= k do k = k - 1 end
  while (k + 1) * period <= t and k + 1 ~= k do k = k + 1 end
  return k
end

local function entry(e)
  local space = string.find(e, ' ', 1, true)
  return num(string.sub(e, 1, space - 1)), num(string.sub(e, space + 1))
end

-- ------------------------------------------------------------ fast path
--
-- The common decision, before anything is built: one rate, granted at
-- once.  The same arithmetic as the parts below (bucket, fixed, counter,
-- log: decide_at, then status), written out per algorithm; it writes only
-- the fields that changed, and refreshes the TTL only when the idle
-- deadline moved to a later whole second (see ttl).  Anything else (a
-- refusal, a booking, several rates, a pending reservation) returns nil
-- having written nothing, and takes the general path.
--
-- The queue is not read: a reservation still queued (its slot later than
-- now) shows in the state and sends the decision to the general path (its
-- slot is a later window's start, or in 'booked', or in the log); entries
-- whose slots have come are dropped by the next general call, which
-- prunes first (MemoryStore._prune).

-- The algorithm sent as one string, read once: a list of parts, each
-- {kind, four numbers}.  A library keeps the last ones it read.
local specs, kept = {}, 0

local function parsed(text)
  local spec = specs[text]
  if spec then return spec end
  local words = {}
  for w in string.gmatch(text, '%S+') do words[#words + 1] = w end
  spec = {}
  for i = 1, tonumber(words[1]) do
    local b = (i - 1) * 5 + 1
    spec[i] = {words[b + 1], num(words[b + 2]), num(words[b + 3]),
      num(words[b + 4]), num(words[b + 5])}
  end
  if kept >= 256 then specs, kept = {}, 0 end
  specs[text] = spec
  kept = kept + 1
  return spec
end

-- The TTL, in ms, of a state idle from *idle* on: rounded up to the next
-- whole second, plus a second of margin.
local function ttl(idle, now)
  local ms = ceil((max(ceil(idle) - now, 0) + 1) * 1000)
  if ms > 2 ^ 45 then ms = 2 ^ 45 end
  return ms
end

-- A count as Redis answers it: an integer (a string past 2^53).
local function count(n)
  if n < 2 ^ 53 then return n end
  return fmt(n)
end

-- The answer of a grant at once (see op 'decide' below).
local function granted_now(ARGV, now, remaining, reset, limit)
  local out = {1, count(remaining), count(limit), fmt(reset)}
  if ARGV[2] == '' then out[5], out[6] = fmt(now), fmt(now) end
  return out
end

local function rest(room)
  if room > 0 then return floor(room) end
  return 0
end

local function fast_fixed(H, ARGV, now, cost, quota, period, top)
  if cost > quota then return nil end
  local got = call('HMGET', H, 'window', 'count')
  local window, used = -INF, 0
  if got[1] then window, used = num(got[1]), num(got[2]) end
  local k = window_of(now, period)
  if k > window then
    call('HSET', H, 'window', fmt(k), 'count', fmt(cost))
    call('PEXPIRE', H, ttl((k + 1) * period, now))
    used = cost
  elseif k == window and used + cost <= top then
    used = used + cost
    call('HSET', H, 'count', fmt(used))
  else
    return nil
  end
  -- status: k is the window now
  return granted_now(ARGV, now, rest(quota - used), (k + 1) * period - now,
    floor(quota))
end

local function fast_counter(H, ARGV, now, cost, quota, period, top)
  if cost > quota then return nil end
  local got = call('HMGET', H, 'window', 'previous', 'current', 'booked')
  local window, previous, current, booked = -INF, 0, 0, -INF
  if got[1] then
    window, previous, current, booked =
      num(got[1]), num(got[2]), num(got[3]), num(got[4])
  end
  if now < booked then return nil end
  local k = window_of(now, period)
  if k < window then return nil end
  local p, c = 0, 0
  if k == window then p, c = previous, current
  elseif k == window + 1 then p, c = current, 0 end
  local elapsed = (now - k * period) / period
  if not (p * (1 - elapsed) + c + cost <= top) then return nil end
  c = c + cost
  if not got[1] then
    call('HSET', H, 'window', fmt(k), 'previous', fmt(p), 'current', fmt(c),
      'booked', fmt(booked))
  elseif k == window then
    call('HSET', H, 'current', fmt(c))
  else
    call('HSET', H, 'window', fmt(k), 'previous', fmt(p), 'current', fmt(c))
  end
  if k ~= window then
    call('PEXPIRE', H, ttl(max((k + 2) * period, booked), now))
  end
  local reset = 0
  if c ~= 0 then
    reset = (k + 2) * period - now
  elseif p ~= 0 then
    reset = (k + 1) * period - now
  end
  local room = quota - (p * (1 - elapsed) + c)
  return granted_now(ARGV, now, rest(room), max(0, reset), floor(quota))
end

local function fast_bucket(H, ARGV, now, cost, rate, capacity, top, eps)
  if cost > capacity then return nil end
  local got = call('HMGET', H, 'at', 'level', 'booked')
  local at, level, booked = -INF, 0, -INF
  if got[1] then at, level, booked = num(got[1]), num(got[2]), num(got[3]) end
  if now < booked then return nil end
  local old = at + level / rate
  local new = level
  if now > at then
    new = new - (now - at) * rate
    if new <= eps then new = 0 end
  end
  if not (new + cost <= top) then return nil end
  new = new + cost
  local when = max(now, at)
  if got[1] then
    call('HSET', H, 'at', fmt(when), 'level', fmt(new))
  else
    call('HSET', H, 'at', fmt(when), 'level', fmt(new), 'booked',
      fmt(booked))
  end
  local idle = when + new / rate
  if not got[1] or ceil(idle) > ceil(old) then
    call('PEXPIRE', H, ttl(idle, now))
  end
  local reset = new / rate
  if when > now then reset = reset + (when - now) end
  return granted_now(ARGV, now, rest(capacity - new), reset, floor(capacity))
end

local function fast_log(H, list, ARGV, now, cost, quota, period, top)
  if cost > quota then return nil end
  local got = call('HMGET', H, 'gone', 'latest', 'dropped')
  local gone, latest, dropped = 0, -INF, 0
  if got[1] then gone, latest, dropped = num(got[1]), num(got[2]), num(got[3]) end
  local stand = max(now, latest)
  -- Log.expire, reading only: the entries gone by stand.
  local n = call('LLEN', list)
  local drop, total = 0, 0
  local old = -INF
  local last, sum
  if n > 0 then
    local e = call('LINDEX', list, -1)
    last, sum = entry(e)
    old = last + period
    while drop < n do
      local t, tot
      if drop == n - 1 then t, tot = last, sum
      else t, tot = entry(call('LINDEX', list, drop)) end
      if not (t + period <= stand) then break end
      drop = drop + 1
      total = tot
    end
  end
  local base = gone
  if drop > 0 then
    if drop == n then base = 0 else base = total end
  end
  local held = 0
  if drop < n then
    held = sum - base
    if not (last <= stand and held + cost <= top) then return nil end
    base = sum
  end
  -- Granted at once: expire, then book at stand.
  local gone2 = gone
  if drop > 0 then
    if drop == n then
      call('DEL', list)
      gone2 = 0
    else
      call('LTRIM', list, drop, -1)
      gone2 = total
    end
  end
  local fields = {}
  if drop > 0 or not got[1] then
    fields = {'gone', fmt(gone2), 'dropped', fmt(dropped + drop)}
  end
  if stand ~= latest then
    fields[#fields + 1] = 'latest'
    fields[#fields + 1] = fmt(stand)
  end
  if #fields > 0 then call('HSET', H, unpack(fields)) end
  local sum2 = base + cost
  call('RPUSH', list, fmt(stand) .. ' ' .. fmt(sum2))
  local idle = stand + period
  if drop == n or not got[1] or ceil(idle) > ceil(old) then
    local ms = ttl(idle, now)
    call('PEXPIRE', H, ms)
    call('PEXPIRE', list, ms)
  end
  -- status: the entry just pushed is the last, at stand.
  return granted_now(ARGV, now, rest(quota - (sum2 - gone2)), stand + period - now,
    floor(quota))
end

-- ------------------------------------------------------ general path
--
-- Everything else: the algorithms built from their arguments, several
-- rates, the reservation queue.  Built on every call that takes it.

local function general(KEYS, ARGV, op, now, spec)

  local function same(a, b)
    for i = 1, #a do
      if a[i] ~= b[i] then return false end
    end
    return true
  end

  local function copy(s)
    local c = {}
    for i = 1, #s do c[i] = s[i] end
    return c
  end

  -- _Decide.decide
  local function decide_at(A, s, now, cost, max_wait)
    if cost > A.capacity then return s, false, INF end
    local at = A.ready(s, now, cost)
    if at <= now then return A.book(s, now, now, cost), true, now end
    if at - now <= max_wait then return A.book(s, now, at, cost), true, at end
    return s, false, at
  end

  -- A state kept as a few numbers in the hash (every algorithm but the log).
  local function tuple_part(A, names, fresh)
    A.width = #names
    A.fresh = function() return copy(fresh) end
    A.mark = function(s) return copy(s) end
    A.rewind = function(s, m) return copy(m) end
    A.load = function(h, prefix)
      local got = call('HMGET', h, unpack(A.fields(prefix)))
      if got[1] == false then return A.fresh() end
      local s = {}
      for i = 1, #got do s[i] = num(got[i]) end
      return s
    end
    A.fields = function(prefix)
      local f = {}
      for i = 1, #names do f[i] = prefix .. names[i] end
      return f
    end
    A.save = function(h, prefix, s, args)
      for i = 1, #names do
        args[#args + 1] = prefix .. names[i]
        args[#args + 1] = fmt(s[i])
      end
    end
    A.pack = function(m, out)
      for i = 1, #m do out[#out + 1] = m[i] end
    end
    A.unpack = function(v, i)
      local m = {}
      for j = 1, #names do m[j] = v[i + j - 1] end
      return m, i + #names
    end
    if not A.decide then
      A.decide = function(s, now, cost, max_wait)
        return decide_at(A, s, now, cost, max_wait)
      end
    end
    return A
  end

  -- _Level: a level draining at rate into a bucket of capacity.
  local function level_part(rate, capacity, top, eps)
    local A = {capacity = capacity, limit = floor(capacity)}
    A.level = function(s, t)
      local level = s[2]
      if t > s[1] then
        level = level - (t - s[1]) * rate
        if level <= eps then level = 0 end
      end
      return level
    end
    A.reset = function(s, level, now)
      local reset = level / rate
      if s[1] > now then reset = reset + (s[1] - now) end
      return reset
    end
    A.idle = function(s, now)
      return s[1] <= now and A.level(s, now) == 0
    end
    A.expiry = function(s) return s[1] + s[2] / rate end
    return A
  end

  local function bucket(rate, capacity, top, eps)
    local A = level_part(rate, capacity, top, eps)
    local function fits(s, t, cost)
      return t >= s[3] and A.level(s, t) + cost <= top
    end
    A.ready = function(s, now, cost)
      if fits(s, now, cost) then return now end
      local excess = s[2] + cost - capacity
      local guess
      if excess <= 0 then guess = s[3] else guess = s[1] + excess / rate end
      return earliest(function(t) return fits(s, t, cost) end, now, guess)
    end
    A.book = function(s, now, slot, cost)
      local at = max(slot, s[1])
      local booked = s[3]
      if slot > now then booked = slot end
      return {at, A.level(s, at) + cost, booked}
    end
    A.status = function(s, now)
      local level = A.level(s, now)
      local room = 0
      if s[3] <= now then room = capacity - level end
      local remaining = 0
      if room > 0 then remaining = floor(room) end
      return remaining, A.reset(s, level, now), A.limit
    end
    A.refund = function(s, now, cost, slot, before, after)
      if same(s, after) then return copy(before) end
      local at = max(now, s[1])
      return {at, max(0, A.level(s, at) - cost), s[3]}
    end
    return tuple_part(A, {'at', 'level', 'booked'}, {-INF, 0, -INF})
  end

  local function shaper(rate, capacity, top, eps)
    local A = level_part(rate, capacity, top, eps)
    A.ready = function(s, now, cost)
      if A.level(s, now) == 0 then return now end
      return earliest(function(t) return A.level(s, t) == 0 end, now,
        s[1] + s[2] / rate)
    end
    A.book = function(s, now, slot, cost)
      local at = max(now, s[1])
      return {at, A.level(s, at) + cost}
    end
    A.decide = function(s, now, cost, max_wait)
      if cost > capacity then return s, false, INF end
      local at = A.ready(s, now, cost)
      if at <= now then return A.book(s, now, now, cost), true, now end
      if A.level(s, now) + cost <= top and at - now <= max_wait then
        return A.book(s, now, at, cost), true, at
      end
      return s, false, at
    end
    A.status = function(s, now)
      local level = A.level(s, now)
      local one = 0
      if level == 0 then one = 1 end
      return one, A.reset(s, level, now), A.limit
    end
    A.refund = function(s, now, cost, slot, before, after)
      if same(s, after) then return copy(before) end
      return s
    end
    return tuple_part(A, {'at', 'level'}, {-INF, 0})
  end

  local function fixed(quota, period, top)
    local A = {capacity = quota, limit = floor(quota)}
    A.ready = function(s, now, cost)
      local window, count = s[1], s[2]
      local k = window_of(now, period)
      if k > window or (k == window and count + cost <= top) then return now end
      if count + cost <= top then return window * period end
      return (window + 1) * period
    end
    A.book = function(s, now, slot, cost)
      local k = window_of(slot, period)
      if k > s[1] then return {k, cost} end
      return {s[1], s[2] + cost}
    end
    A.status = function(s, now)
      local window, count = s[1], s[2]
      local k = window_of(now, period)
      if k > window then return A.limit, 0, A.limit end
      local room = 0
      if k == window then room = quota - count end
      local remaining = 0
      if room > 0 then remaining = floor(room) end
      return remaining, (window + 1) * period - now, A.limit
    end
    A.idle = function(s, now) return window_of(now, period) > s[1] end
    A.refund = function(s, now, cost, slot, before, after)
      if same(s, after) then return copy(before) end
      if window_of(slot, period) == s[1] then
        return {s[1], max(0, s[2] - cost)}
      end
      return s
    end
    A.expiry = function(s) return (s[1] + 1) * period end
    return tuple_part(A, {'window', 'count'}, {-INF, 0})
  end

  local function counter(quota, period, top)
    local A = {capacity = quota, limit = floor(quota)}
    local function counts(s, k)
      if k == s[1] then return s[2], s[3] end
      if k == s[1] + 1 then return s[3], 0 end
      return 0, 0
    end
    local function fits(s, t, cost)
      if t < s[4] then return false end
      local k = window_of(t, period)
      if k < s[1] then return false end
      local previous, current = counts(s, k)
      local elapsed = (t - k * period) / period
      return previous * (1 - elapsed) + current + cost <= top
    end
    A.ready = function(s, now, cost)
      if fits(s, now, cost) then return now end
      local start = max(now, s[4])
      local first = max(window_of(start, period), s[1])
      local function ok(t) return fits(s, t, cost) end
      for k = first, first + 1 do
        local previous, current = counts(s, k)
        local room = quota - current - cost
        if room >= quota - top then
          room = max(room, 0)
          local guess = k * period
          if previous > room then
            guess = guess + (1 - room / previous) * period
          end
          guess = max(guess, start)
          if guess < (k + 1) * period then return earliest(ok, now, guess) end
        end
      end
      return earliest(ok, now, max((first + 2) * period, start))
    end
    A.book = function(s, now, slot, cost)
      local booked = s[4]
      local k = max(window_of(slot, period), s[1])
      local previous, current = counts(s, k)
      if slot > now then booked = max(booked, slot) end
      return {k, previous, current + cost, booked}
    end
    A.status = function(s, now)
      local window, previous, current, booked = s[1], s[2], s[3], s[4]
      local reset = 0
      if current ~= 0 then
        reset = (window + 2) * period - now
      elseif previous ~= 0 then
        reset = (window + 1) * period - now
      end
      local k = window_of(now, period)
      local room = 0
      if k >= window and booked <= now then
        local p, c = counts(s, k)
        local elapsed = (now - k * period) / period
        room = quota - (p * (1 - elapsed) + c)
      end
      local remaining = 0
      if room > 0 then remaining = floor(room) end
      return remaining, max(0, reset), A.limit
    end
    A.idle = function(s, now)
      local k = window_of(now, period)
      local p, c = counts(s, k)
      return s[4] <= now and k >= s[1] and p == 0 and c == 0
    end
    A.refund = function(s, now, cost, slot, before, after)
      if same(s, after) then return copy(before) end
      local window, previous, current = s[1], s[2], s[3]
      local k = window_of(slot, period)
      if k == window then
        current = max(0, current - cost)
      elseif k == window - 1 then
        previous = max(0, previous - cost)
      end
      return {window, previous, current, s[4]}
    end
    A.expiry = function(s) return max((s[1] + 2) * period, s[4]) end
    return tuple_part(A, {'window', 'previous', 'current', 'booked'},
      {-INF, 0, 0, -INF})
  end

  -- The sliding-window log: its entries in a list of its own, the rest in
  -- the hash.  Expired entries are removed at once (Log.head is always 0
  -- here, and dropped counts them), so marks count entries as in Python.

  local function log(quota, period, top, list)
    local A = {capacity = quota, limit = floor(quota), width = 1}
    local names = {'gone', 'latest', 'dropped'}
    local function at(s, i) -- time and total of entry i (0-based)
      return entry(call('LINDEX', list, i))
    end
    A.fresh = function()
      return {gone = 0, latest = -INF, dropped = 0, n = 0}
    end
    A.load = function(h, prefix)
      local f = {}
      for i = 1, #names do f[i] = prefix .. names[i] end
      local got = call('HMGET', h, unpack(f))
      local s = A.fresh()
      if got[1] ~= false then
        s.gone, s.latest, s.dropped = num(got[1]), num(got[2]), num(got[3])
      end
      s.n = call('LLEN', list)
      return s
    end
    A.save = function(h, prefix, s, args)
      args[#args + 1] = prefix .. 'gone'
      args[#args + 1] = fmt(s.gone)
      args[#args + 1] = prefix .. 'latest'
      args[#args + 1] = fmt(s.latest)
      args[#args + 1] = prefix .. 'dropped'
      args[#args + 1] = fmt(s.dropped)
    end
    A.expire = function(s, now)
      if now < s.latest then now = s.latest else s.latest = now end
      local gone = 0
      local total = 0
      while gone < s.n do
        local t, tot = at(s, gone)
        if not (t + period <= now) then break end
        gone = gone + 1
        total = tot
      end
      if gone > 0 then
        if gone == s.n then
          call('DEL', list)
          s.gone = 0
        else
          call('LTRIM', list, gone, -1)
          s.gone = total
        end
        s.dropped = s.dropped + gone
        s.n = s.n - gone
      end
      return now
    end
    A.ready = function(s, now, cost)
      local stand = A.expire(s, now)
      if s.n == 0 then return now end
      local last, total = at(s, -1)
      if last <= stand and total - s.gone + cost <= top then return now end
      if total - s.gone + cost <= top then return last end
      local lo, hi = 0, s.n
      while lo < hi do
        local mid = floor((lo + hi) / 2)
        local _, done = at(s, mid)
        if total - done + cost <= top then hi = mid else lo = mid + 1 end
      end
      local t = at(s, lo)
      return max(last, t + period)
    end
    A.book = function(s, now, slot, cost)
      slot = max(slot, s.latest)
      local base = s.gone
      if s.n > 0 then
        local _, total = at(s, -1)
        base = total
      end
      call('RPUSH', list, fmt(slot) .. ' ' .. fmt(base + cost))
      s.n = s.n + 1
      return s
    end
    A.decide = function(s, now, cost, max_wait)
      return decide_at(A, s, now, cost, max_wait)
    end
    A.status = function(s, now)
      local stand = A.expire(s, now)
      if s.n == 0 then return A.limit, 0, A.limit end
      local last, total = at(s, -1)
      local held = total - s.gone
      if last > stand then held = quota end
      local room = quota - held
      local remaining = 0
      if room > 0 then remaining = floor(room) end
      return remaining, last + period - now, A.limit
    end
    A.idle = function(s, now)
      A.expire(s, now)
      return s.n == 0
    end
    A.mark = function(s) return {s.dropped + s.n} end
    A.rewind = function(s, m)
      local keep = m[1] - s.dropped
      if keep < s.n then
        if keep <= 0 then
          call('DEL', list)
        else
          call('LTRIM', list, 0, keep - 1)
        end
        s.n = max(keep, 0)
      end
      return s
    end
    A.refund = function(s, now, cost, slot, before, after)
      if after[1] == s.dropped + s.n and before[1] - s.dropped >= 0 then
        return A.rewind(s, before)
      end
      return s
    end
    A.expiry = function(s)
      if s.n == 0 then return -INF end
      local last = at(s, -1)
      return last + period
    end
    A.pack = function(m, out) out[#out + 1] = m[1] end
    A.unpack = function(v, i) return {v[i]}, i + 1 end
    A.list = list
    return A
  end

  -- Several algorithms at once (MultiRateAlgorithm).
  local function multi(parts)
    local A = {width = 0, capacity = INF, limit = INF}
    for _, p in ipairs(parts) do
      A.width = A.width + p.width
      if p.capacity < A.capacity then A.capacity = p.capacity end
      if p.limit < A.limit then A.limit = p.limit end
    end
    local function each(f)
      local out = {}
      for i, p in ipairs(parts) do out[i] = f(i, p) end
      return out
    end
    local function prefix(i)
      if #parts == 1 then return '' end
      return (i - 1) .. ':'
    end
    A.fresh = function() return each(function(_, p) return p.fresh() end) end
    A.load = function(h)
      return each(function(i, p) return p.load(h, prefix(i)) end)
    end
    A.save = function(h, s)
      local args = {}
      for i, p in ipairs(parts) do p.save(h, prefix(i), s[i], args) end
      call('HSET', h, unpack(args))
    end
    A.ready = function(s, now, cost)
      local ready = -INF
      for i, p in ipairs(parts) do
        local r = p.ready(s[i], now, cost)
        if r > ready then ready = r end
      end
      return ready
    end
    A.book = function(s, now, slot, cost)
      return each(function(i, p) return p.book(s[i], now, slot, cost) end)
    end
    A.decide = function(s, now, cost, max_wait)
      if #parts == 1 then
        local one, granted, at = parts[1].decide(s[1], now, cost, max_wait)
        return {one}, granted, at
      end
      return decide_at(A, s, now, cost, max_wait)
    end
    A.status = function(s, now)
      local best
      for i, p in ipairs(parts) do
        local r, reset, limit = p.status(s[i], now)
        if best == nil or r < best[1] then best = {r, reset, limit} end
      end
      return best[1], best[2], best[3]
    end
    A.idle = function(s, now)
      for i, p in ipairs(parts) do
        if not p.idle(s[i], now) then return false end
      end
      return true
    end
    A.mark = function(s) return each(function(i, p) return p.mark(s[i]) end) end
    A.rewind = function(s, m)
      return each(function(i, p) return p.rewind(s[i], m[i]) end)
    end
    A.refund = function(s, now, cost, slot, before, after)
      return each(function(i, p)
        return p.refund(s[i], now, cost, slot, before[i], after[i])
      end)
    end
    A.pack = function(m, out)
      for i, p in ipairs(parts) do p.pack(m[i], out) end
    end
    A.unpack = function(v, i)
      local m = {}
      for j, p in ipairs(parts) do m[j], i = p.unpack(v, i) end
      return m, i
    end
    A.expiry = function(s)
      local e = -INF
      for i, p in ipairs(parts) do e = max(e, p.expiry(s[i])) end
      return e
    end
    A.lists = each(function(_, p) return p.list or false end)
    return A
  end

  -- ----------------------------------------------------------------- args

  local parts = {}
  local logs = 0
  for i, part in ipairs(spec) do
    local kind, a, b, c, d = part[1], part[2], part[3], part[4], part[5]
    if kind == 'bucket' then
      parts[i] = bucket(a, b, c, d)
    elseif kind == 'shaper' then
      parts[i] = shaper(a, b, c, d)
    elseif kind == 'fixed' then
      parts[i] = fixed(a, b, c)
    elseif kind == 'counter' then
      parts[i] = counter(a, b, c)
    else
      logs = logs + 1
      parts[i] = log(a, b, c, KEYS[2 + logs])
    end
  end
  local argi = 4
  local A = multi(parts)
  local H, Q = KEYS[1], KEYS[2]

  -- ---------------------------------------------------------------- store

  local function parse_entry(e)
    local v = {}
    for w in string.gmatch(e, '%S+') do v[#v + 1] = w end
    local r = {id = v[1]}
    local nums = {}
    for i = 2, #v do nums[i - 1] = num(v[i]) end
    r.cost, r.slot = nums[1], nums[2]
    r.before = A.unpack(nums, 3)
    r.after = A.unpack(nums, 3 + A.width)
    return r
  end

  local function format_entry(r)
    local out = {r.id, fmt(r.cost), fmt(r.slot)}
    local flat = {}
    A.pack(r.before, flat)
    A.pack(r.after, flat)
    for _, x in ipairs(flat) do out[#out + 1] = fmt(x) end
    return table.concat(out, ' ')
  end

  -- Drop the reservations whose slots have come (MemoryStore._prune).
  local function prune()
    while true do
      local e = call('LINDEX', Q, 0)
      if not e then return false end
      local r = parse_entry(e)
      if r.slot > now then return true end
      call('LPOP', Q)
    end
  end

  -- Let the keys expire once the state is idle (and the queue served).
  local function expire_in(state, last_slot)
    local ms = ttl(max(A.expiry(state), last_slot), now)
    call('PEXPIRE', H, ms)
    if last_slot > -INF then call('PEXPIRE', Q, ms) end
    for _, list in ipairs(A.lists) do
      if list then call('PEXPIRE', list, ms) end
    end
  end

  local function save(s, last_slot)
    A.save(H, s)
    expire_in(s, last_slot)
  end

  -- RPUSH in batches (unpack has a limit on its number of values).
  local function push(key, values)
    for i = 1, #values, 1000 do
      call('RPUSH', key, unpack(values, i, math.min(i + 999, #values)))
    end
  end

  local function last_queued()
    local e = call('LINDEX', Q, -1)
    if not e then return -INF end
    return parse_entry(e).slot
  end

  local function marks(m, out)
    local flat = {}
    A.pack(m, flat)
    for _, x in ipairs(flat) do out[#out + 1] = fmt(x) end
  end

  -- MemoryStore._rebook: book the queued reservations again, in order.
  local function rebook(state, kept, queued)
    local out = {fmt(now), tostring(#queued)}
    for _, r in ipairs(queued) do
      r.before = A.mark(state)
      local slot = A.ready(state, now, r.cost)
      state = A.book(state, now, slot, r.cost)
      r.after = A.mark(state)
      local moved = '0'
      if slot ~= r.slot then
        r.slot = slot
        moved = '1'
      end
      if slot > now then kept[#kept + 1] = r end
      out[#out + 1] = r.id
      out[#out + 1] = fmt(slot)
      out[#out + 1] = moved
      marks(r.before, out)
      marks(r.after, out)
    end
    call('DEL', Q)
    local last = -INF
    if #kept > 0 then
      local entries = {}
      for i, r in ipairs(kept) do entries[i] = format_entry(r) end
      push(Q, entries)
      last = kept[#kept].slot
    end
    if #kept == 0 and A.idle(state, now) then
      call('DEL', H)
      for _, list in ipairs(A.lists) do
        if list then call('DEL', list) end
      end
    else
      save(state, last)
    end
    return out
  end

  local function queue()
    local q = {}
    for i, e in ipairs(call('LRANGE', Q, 0, -1)) do q[i] = parse_entry(e) end
    return q
  end

  if op == 'decide' then
    -- Answers {granted, remaining, limit, reset_after}, then, unless
    -- granted at once on the caller's clock, {at, now}, and for a
    -- reservation its marks.
    local cost, max_wait, id = num(ARGV[argi]), num(ARGV[argi + 1]),
      ARGV[argi + 2]
    local queued = prune()
    local state = A.load(H)
    local before = A.mark(state)
    local granted, at
    state, granted, at = A.decide(state, now, cost, max_wait)
    local last = -INF
    if queued then last = last_queued() end
    local booked = granted and at > now
    if booked then
      call('RPUSH', Q, format_entry(
        {id = id, cost = cost, slot = at, before = before,
         after = A.mark(state)}))
      last = at
    end
    save(state, last)
    local remaining, reset, limit = A.status(state, now)
    local out = {0, count(remaining), count(limit), fmt(reset)}
    if granted then out[1] = 1 end
    if booked or not granted or ARGV[2] == '' then
      out[5], out[6] = fmt(at), fmt(now)
      if booked then
        marks(before, out)
        marks(A.mark(state), out)
      end
    end
    return out
  elseif op == 'peek' then
    local cost = num(ARGV[argi])
    local existed = call('EXISTS', H) == 1
    local state = A.load(H)
    local before = A.mark(state)
    local after, granted, at = A.decide(state, now, cost, 0)
    local remaining, reset, limit = A.status(after, now)
    state = A.rewind(after, before)
    if existed then A.save(H, state) end
    local g = '0'
    if granted then g = '1' end
    return {g, fmt(at), fmt(remaining), fmt(reset), fmt(limit), fmt(now)}
  elseif op == 'cancel' then
    local id = ARGV[argi]
    if ARGV[argi + 1] == nil then
      -- A caller that never heard back (interrupted while the decision was
      -- on its way): take the booking back if it is queued, else nothing.
      local found = false
      for _, e in ipairs(call('LRANGE', Q, 0, -1)) do
        if string.sub(e, 1, #id + 1) == id .. ' ' then found = true break end
      end
      if not found then return {fmt(now), '0'} end
    end
    local cost, slot = num(ARGV[argi + 1] or '0'), num(ARGV[argi + 2] or '0')
    local v = {}
    for i = argi + 3, #ARGV do v[#v + 1] = num(ARGV[i]) end
    local before, i = A.unpack(v, 1)
    local after = A.unpack(v, i)
    prune()
    local q = queue()
    local state = A.load(H)
    local index
    for j, r in ipairs(q) do
      if r.id == id then index = j break end
    end
    local kept, rest = {}, {}
    if index then
      state = A.rewind(state, q[index].before)
      for j, r in ipairs(q) do
        if j < index then kept[#kept + 1] = r
        elseif j > index then rest[#rest + 1] = r end
      end
    else
      if #q > 0 then state = A.rewind(state, q[1].before) end
      rest = q
      state = A.refund(state, now, cost, slot, before, after)
    end
    return rebook(state, kept, rest)
  else -- reset
    prune()
    local q = queue()
    for _, list in ipairs(A.lists) do
      if list then call('DEL', list) end
    end
    return rebook(A.fresh(), {}, q)
  end
end

local function main(KEYS, ARGV)
  if not call then init() end
  local op = ARGV[1]
  local now
  if ARGV[2] == '' then
    local t = call('TIME')
    now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  else
    now = num(ARGV[2])
  end
  local spec = parsed(ARGV[3])
  if op == 'decide' and #spec == 1 then
    local part, cost, answer = spec[1], num(ARGV[4])
    local kind, a, b, c, d = part[1], part[2], part[3], part[4], part[5]
    if kind == 'fixed' then
      answer = fast_fixed(KEYS[1], ARGV, now, cost, a, b, c)
    elseif kind == 'counter' then
      answer = fast_counter(KEYS[1], ARGV, now, cost, a, b, c)
    elseif kind == 'bucket' then
      answer = fast_bucket(KEYS[1], ARGV, now, cost, a, b, c, d)
    elseif kind == 'log' then
      answer = fast_log(KEYS[1], KEYS[3], ARGV, now, cost, a, b, c)
    end
    if answer then return answer end
  end
  return general(KEYS, ARGV, op, now, spec)
end
