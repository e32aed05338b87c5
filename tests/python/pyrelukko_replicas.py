"""The official Python client (pyrelukko) against two replicas of our server
on one PostgreSQL: every call of its API through one replica, checked through
the other, and a waiter on replica B that acquires once a holder on replica A
releases. Run by relukko-server/tests/server_postgres.rs with the replicas'
URLs and key; exits non-zero (with a traceback) on any mismatch."""

import sys
import threading
import time
import uuid

from pyrelukko import RelukkoClient

url_a, url_b, key = sys.argv[1], sys.argv[2], sys.argv[3]
# Short waits so the test stays quick; retries as pyrelukko does by default.
a = RelukkoClient(url_a, key, acquire_wait_for_timeout=1, ws_wait_for_timeout=1)
b = RelukkoClient(url_b, key, acquire_wait_for_timeout=1, ws_wait_for_timeout=1)


def field(lock, name):
    return lock[name] if not isinstance(lock, dict) else lock.get(name)


name = f"py-{uuid.uuid4().hex[:12]}"
lock = a.acquire_relukko(name, "pyrelukko on replica A", 30)
lock_id = str(field(lock, "id"))
assert field(lock, "lock_name") == name, lock

seen = b.get_lock(lock_id)
assert field(seen, "lock_name") == name, seen
assert any(str(field(l, "id")) == lock_id for l in b.get_locks())

# keep_alive: now + 5 minutes (the lock was made for 10), by the database's clock.
kept = b.keep_relukko_alive(lock_id)
assert field(kept, "expires_at") != field(lock, "expires_at"), (kept, lock)
kept = b.keep_relukko_alive_put(lock_id, 600)
assert field(kept, "expires_at") > field(lock, "expires_at"), (kept, lock)
added = a.add_to_expires_at_time(lock_id)
assert field(added, "expires_at") > field(kept, "expires_at"), (added, kept)
added = a.add_to_expires_at_time_put(lock_id, 60)
updated = b.update_relukko(lock_id, creator="renamed through B")
assert field(updated, "creator") == "renamed through B", updated
assert field(a.get_lock(lock_id), "creator") == "renamed through B"

# A waiter on B (its WebSocket on B) gets the name once A releases it.
got = {}


def wait_on_b():
    got["lock"] = b.acquire_relukko(name, "pyrelukko waiter on replica B", 60)


waiter = threading.Thread(target=wait_on_b)
started = time.monotonic()
waiter.start()
time.sleep(1.5)
assert "lock" not in got, "the waiter got a held name"
a.delete_relukko(lock_id)
waiter.join(60)
assert not waiter.is_alive(), "the waiter on B never got the name"
assert field(got["lock"], "lock_name") == name
b.delete_relukko(str(field(got["lock"], "id")))
print(f"pyrelukko: every call through two replicas; waiter got the name after {time.monotonic() - started:.1f} s")
