"""A small load generator: places N orders from W threads through the real HTTP API
and waits until every create-order saga is COMPLETED.

Usage: python3 scripts/load.py http://127.0.0.1:8080 1000 8

Not the benchmark harness (that is `campusg bench`, still to come); it gives a
first throughput figure for the closing notes.
"""
import json, sys, time, threading, urllib.request
base, n, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r: return json.loads(r.read())
def get(path):
    with urllib.request.urlopen(base + path) as r: return json.loads(r.read())
try: post("/users", {"user_id": "load", "name": "L", "email": "l@c.edu", "payment_method": "pm_card_visa"})
except Exception: pass
sagas = []; lock = threading.Lock()
def work(k):
    for i in range(k):
        s = post("/api/orders", {"customer_id": "load", "order_details": {"foodItems": [{"name": "x", "price": 3.5, "quantity": 1}], "deliveryLocation": "H"}})
        with lock: sagas.append(s["saga_id"])
t0 = time.time()
ts = [threading.Thread(target=work, args=(n // workers,)) for _ in range(workers)]
[t.start() for t in ts]; [t.join() for t in ts]
t1 = time.time()
while True:
    done = len(get("/api/sagas?status=COMPLETED&page_size=500&page=1")["sagas"])
    total = 0; page = 1
    while True:
        got = len(get(f"/api/sagas?status=COMPLETED&page_size=500&page={page}")["sagas"])
        total += got
        if got < 500: break
        page += 1
    if total >= len(sagas): break
    time.sleep(0.05)
t2 = time.time()
print(f"{len(sagas)} orders posted in {t1-t0:.2f}s ({len(sagas)/(t1-t0):.0f}/s); all sagas COMPLETED after {t2-t0:.2f}s ({len(sagas)/(t2-t0):.0f} sagas/s)")
