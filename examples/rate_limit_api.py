"""
Rate-limit an API per user, with the headers a client needs.

Runs instantly on a fake clock: ``python examples/rate_limit_api.py``.
"""

from __future__ import annotations

import asyncio

import stalwart

from stalwart.testing import FakeClock


clock = FakeClock()

# Each user may make 5 requests at once, refilled at 5 per 10 seconds,
# and at most 20 an hour: a request must fit both.
per_user = stalwart.TokenBucket(rate="5/10s;20/hour", name="api", clock=clock)


def handle(user: str) -> str:
    """Serve one request of *user*, or refuse it with 429."""
    decision = per_user.try_acquire(key=user)
    headers = decision.headers()
    if not decision:
        return f"429 Too Many Requests  Retry-After: {headers['Retry-After']}s"
    return f"200 OK  RateLimit-Remaining: {headers['RateLimit-Remaining']}"


print("alice sends 7 requests at once:")
for i in range(7):
    print(f"  #{i + 1}: {handle('alice')}")
print("bob is not affected:", handle("bob"))

clock.advance(4.0)
print("4 s later, alice has two tokens again:", handle("alice"))
print("bob could go now:", bool(per_user.peek(key="bob")), "(nothing taken)")
per_user.reset("alice")
print("after a reset, alice starts afresh:", handle("alice"))

# A shaper spaces calls to a fragile backend evenly: one every 0.5 s.
backend = stalwart.LeakyBucket(
    rate="2/s", capacity=10, mode="shaper", name="backend", clock=clock
)


@backend
async def call_backend(job: int) -> str:
    """Pretend to call the backend."""
    return f"job {job} sent at t={clock.now() - start:.1f}s"


async def main() -> None:
    """
    Send four jobs at once; the shaper releases them at their slots.  Job 1
    gives up: the jobs behind it move up.
    """
    jobs = [asyncio.ensure_future(call_backend(j)) for j in range(4)]
    await asyncio.sleep(0)
    jobs[1].cancel()
    for job in jobs:
        try:
            print(" ", await job)
        except asyncio.CancelledError:
            print("  job 1 cancelled")


start = clock.now()
print("four jobs through the shaper:")
asyncio.run(main())

# A sliding-window log is exact: at most 3 in any 60 s.
strict = stalwart.SlidingWindowLog(rate="3/minute", name="login", clock=clock)
for _ in range(3):
    strict.acquire()
try:
    strict.acquire(timeout=5.0)
except stalwart.RateLimitExceededError as error:
    print(f"login: {error}")
print("statistics:", per_user.statistics())
