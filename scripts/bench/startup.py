"""Start-up of the ingest function, as Lambda starts it: the release binary is spawned with
AWS_LAMBDA_RUNTIME_API pointing at a stand-in of the Lambda Runtime API on 127.0.0.1, and S3 at a
moto server on 127.0.0.1. Measures, over several cold starts:

- start-up: process spawn until the function asks for its first event (GET .../invocation/next);
- first invocation: the event handed over until the function posts its response
  (events/msk-batch.json: 14 records, three Parquet files put to S3).

    startup.py INGEST_BINARY EVENT_JSON [ROUNDS]      prints one JSON object
"""
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runtime(http.server.ThreadingHTTPServer):
    """The Lambda Runtime API, for one invocation."""

    def __init__(self, event):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = event
        self.spawned = None
        self.asked = None
        self.answered = None
        self.status = None
        self.done = threading.Event()
        self.served = False


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        rt = self.server
        if not self.path.endswith("/invocation/next"):
            self.send_error(404)
            return
        if rt.served:
            # The next event never comes: the process is stopped after the first invocation.
            rt.done.wait(30)
            try:
                self.send_error(410)
            except OSError:
                pass  # the process was stopped meanwhile
            return
        rt.served = True
        rt.asked = time.perf_counter()
        body = rt.event
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-0001")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:ingest")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        rt = self.server
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        rt.answered = time.perf_counter()
        rt.status = "response" if self.path.endswith("/response") else "error"
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        rt.done.set()


def cold_start(binary, event, env):
    rt = Runtime(event)
    threading.Thread(target=rt.serve_forever, daemon=True).start()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{rt.server_address[1]}")
    rt.spawned = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not rt.done.wait(60):
            raise SystemExit("the function did not answer within 60 s: " + proc.stderr.read1().decode(errors="replace"))
    finally:
        proc.terminate()
        proc.wait(10)
        rt.shutdown()
    if rt.status != "response":
        raise SystemExit(f"the first invocation failed ({rt.status})")
    return (rt.asked - rt.spawned) * 1000, (rt.answered - rt.asked) * 1000


def main():
    binary, event_path = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    event = open(event_path, "rb").read()
    venv = os.path.dirname(sys.executable)
    port = free_port()
    moto = subprocess.Popen([os.path.join(venv, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
                break
            except Exception:
                if time.time() > deadline:
                    raise SystemExit("moto_server did not start")
                time.sleep(0.1)
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="test", aws_secret_access_key="test").create_bucket(Bucket="bench")
        env = {
            "PATH": os.environ.get("PATH", ""), "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_NAME": "ingest", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "AWS_LAMBDA_LOG_GROUP_NAME": "bench", "TRIBUTARY_BUCKET": "bench", "RUST_LOG": "warn",
        }
        starts, firsts = [], []
        for _ in range(rounds):
            s, f = cold_start(binary, event, env)
            starts.append(s)
            firsts.append(f)
    finally:
        moto.terminate()
        moto.wait(10)
    print(json.dumps({
        "rounds": rounds, "startup_ms_median": statistics.median(starts), "startup_ms_max": max(starts),
        "first_invocation_ms_median": statistics.median(firsts), "first_invocation_ms_max": max(firsts),
        "binary_bytes": os.path.getsize(binary),
    }))


if __name__ == "__main__":
    main()
