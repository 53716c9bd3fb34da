"""Load benchmark of the local server: sustained mixed load, a version switch, bad inputs.

    .venv/bin/python benchmarks/serving_load.py --model runs/benchmark/loo \
        [--export-base /tmp/load_models/ml] [--requests 20000] [--clients 64]

Runs the server (`tf-profiles serve`) as its own process on a private copy
of the export base (version 1: the newest version of --export-base, or a
fresh export of --model), and from this process:
  1. two closed-loop halves of --requests mixed requests (lookup_profiles,
     serving_default, user_embedding, item_embedding) from --clients
     threads, each on its own channel; the server's RSS after each half;
  2. the same load while `tf-profiles export` (another process) publishes
     version 2 into the served base path, until version 2 has answered for
     --after-switch seconds;
  3. every malformed request of benchmarks/loadgen.py's bad_requests;
  4. --switches more versions published one after another, the server's
     RSS after each (an unloaded version must not stay in memory).
Writes docs/benchmarks/serving_load.md (+ JSON).
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

import tf_profiles  # noqa: F401
from tf_profiles.serving.client import ServingClient
from tf_profiles.serving.tensors import GRPC_OPTIONS
from tf_profiles.bundle.model_dir import ModelDir

import loadgen  # benchmarks/, beside this script (the tests: from benchmarks import loadgen)

ROOT = Path(__file__).resolve().parent.parent
NAME = "ml"
BIN = Path(sys.executable).parent


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quiet_env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _prepare_base(args, work: Path) -> Path:
    base = work / NAME
    given = Path(args.export_base) if args.export_base else None
    versions = sorted(int(p.name) for p in given.glob("*")
                      if p.name.isdigit()) if given and given.is_dir() else []
    if versions:
        shutil.copytree(given / str(versions[-1]), base / "1")
    else:
        subprocess.run([str(BIN / "tf-profiles"), "export", "--model", args.model,
                        "--export-base", str(base)], check=True, env=_quiet_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return base


def _start_server(base: Path, port: int, log_path: Path):
    process = subprocess.Popen(
        [str(BIN / "tf-profiles"), "serve", "--model-name", NAME, "--model-base-path", str(base),
         "--port", str(port), "--file-system-poll-wait-seconds", "1"],
        stdout=subprocess.DEVNULL, stderr=log_path.open("w"), env=_quiet_env())
    client = ServingClient(f"127.0.0.1:{port}", NAME, max_retries=0, timeout=5)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            client.status()
            return process
        except grpc.RpcError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the server did not come up; see {log_path}")


def _served_versions(client):
    try:
        return [s["version"] for s in client.status()]
    except grpc.RpcError:
        return []


def _switch(target, pools, args, base: Path, server_pid: int, log_path: Path) -> dict:
    """Closed-loop load while another process exports version 2 into ``base``."""
    stop, results = threading.Event(), []
    load = threading.Thread(target=lambda: results.append(loadgen.run_load(
        target, pools, requests=10 ** 9, clients=args.clients, stop=stop, seed=3)))
    load.start()
    time.sleep(2.0)
    began = time.monotonic()
    export = subprocess.run([str(BIN / "tf-profiles"), "export", "--model", args.model,
                             "--export-base", str(base)], env=_quiet_env(),
                            stdout=subprocess.DEVNULL, stderr=log_path.open("w"))
    exported = time.monotonic()
    if export.returncode:
        stop.set()
        load.join()
        raise RuntimeError(f"tf-profiles export failed (exit {export.returncode}); "
                           f"see {log_path}")
    deadline = exported + 600
    with ServingClient(target, NAME, max_retries=0, timeout=5) as status:
        while _served_versions(status) != [2] and time.monotonic() < deadline:
            time.sleep(0.05)
    switched = time.monotonic()
    time.sleep(args.after_switch)
    stop.set()
    load.join()
    result = results[0]
    after = [c for c in result.calls if c.started > switched]
    return {"export_returncode": export.returncode,
            "export_seconds": round(exported - began, 1),
            "served_new_version_after_export_s": round(switched - exported, 1),
            "load": result.summary(), "rss_after_mb": round(loadgen.rss_bytes(server_pid) / 2**20),
            "answers_by_version": {v: sum(c.version == v for c in result.calls)
                                   for v in sorted({c.version for c in result.calls})},
            "requests_after_switch": len(after),
            "old_version_answers_after_switch": sum(c.version != 2 for c in after),
            "failure_samples": [c.error for c in result.failures()[:5]]}


def _repeated_switches(target, base: Path, server_pid: int, count: int) -> list:
    """Publishes ``count`` more versions (copies of the newest, renamed in like an
    export), one at a time, each once the previous is served alone; the server's
    RSS after each. Growth per switch would be a leak: an unloaded version kept."""
    rss = []
    with ServingClient(target, NAME, max_retries=0, timeout=5) as status:
        for _ in range(count):
            newest = max(int(p.name) for p in base.glob("*") if p.name.isdigit())
            staging = base / f".staging-{newest + 1}"
            shutil.copytree(base / str(newest), staging)
            staging.rename(base / str(newest + 1))
            deadline = time.monotonic() + 600
            while _served_versions(status) != [newest + 1]:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"version {newest + 1} was not served alone in 600 s")
                time.sleep(0.1)
            shutil.rmtree(base / str(newest))  # keeps the disk use of the copies bounded
            rss.append(round(loadgen.rss_bytes(server_pid) / 2**20))
    return rss


def _last_line(details: str) -> str:
    # TensorFlow's op errors end with the reason, before the "[[{{node ...}}]]" line.
    lines = [line.strip() for line in details.splitlines()
             if line.strip() and not line.strip().startswith("[[")]
    return lines[-1] if lines else ""


def _bad_inputs(target, catalogue):
    """(one row per bad request, whether a normal lookup succeeds afterwards)."""
    user = str(catalogue.users["user_id"].iloc[0])
    item = str(catalogue.items["item_id"].iloc[0])
    rows = []
    with grpc.insecure_channel(target, options=GRPC_OPTIONS) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for case in loadgen.bad_requests(NAME, user, item):
            code, details, seconds = loadgen.send_bad_request(stub, case)
            rows.append({"input": case.name, "expected": list(case.expected), "status": code,
                         "as_expected": code in case.expected and details != "wrong answer",
                         "details": _last_line(details)[:120],
                         "seconds": round(seconds, 3)})
    with ServingClient(target, NAME, max_retries=0) as client:
        alive = client.lookup_profiles([user])
    return rows, bool(alive["found"].iloc[0])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "runs" / "benchmark" / "loo"))
    parser.add_argument("--export-base", help="serve a copy of its newest version as version 1 "
                        "(default: export --model first)")
    parser.add_argument("--requests", type=int, default=20_000, help="steady load, both halves")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--after-switch", type=float, default=10.0,
                        help="seconds of load once version 2 is the only one served")
    parser.add_argument("--switches", type=int, default=8,
                        help="further version switches (copies, no load) to watch RSS over")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "serving_load"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tf_profiles_load_"))
    catalogue = ModelDir(Path(args.model)).catalogue()
    base = _prepare_base(args, work)
    port = _free_port()
    server = _start_server(base, port, work / "server.log")
    target = f"127.0.0.1:{port}"
    results = {"machine": {"cores": os.cpu_count()}, "args": vars(args)}
    try:
        pools = loadgen.mixed_requests(NAME, catalogue.users["user_id"].astype(str).tolist(),
                                       catalogue.items["item_id"].astype(str).tolist())
        rss = {"start": loadgen.rss_bytes(server.pid)}
        halves = []
        for seed in (1, 2):
            half = loadgen.run_load(target, pools, args.requests // 2, args.clients, seed=seed)
            halves.append(half.summary())
            rss[f"after half {seed}"] = loadgen.rss_bytes(server.pid)
            print(halves[-1], flush=True)
        results["steady"] = {"halves": halves, "rss_mb": {k: round(v / 2**20) for k, v in
                                                          rss.items()}}
        results["switch"] = _switch(target, pools, args, base, server.pid, work / "export.log")
        print(results["switch"], flush=True)
        results["bad_inputs"], results["alive_after_bad_inputs"] = _bad_inputs(target, catalogue)
        results["repeated_switches_rss_mb"] = _repeated_switches(target, base, server.pid,
                                                                 args.switches)
        print(results["repeated_switches_rss_mb"], flush=True)
    finally:
        server.kill()
    write_report(results, Path(args.out))
    shutil.rmtree(work, ignore_errors=True)


def write_report(results, out: Path):
    halves, rss = results["steady"]["halves"], results["steady"]["rss_mb"]
    switch, args = results["switch"], results["args"]
    repeated = results["repeated_switches_rss_mb"]
    version_mb = switch["rss_after_mb"] - rss["after half 2"]
    command = (".venv/bin/python benchmarks/serving_load.py --model " + args["model"]
               + (f" --export-base {args['export_base']}" if args["export_base"] else "")
               + f" --requests {args['requests']} --clients {args['clients']}")
    lines = [f"# Serving under load ({time.strftime('%Y-%m-%d')})", "",
             f"The local server (`tf-profiles serve`, 16 worker threads, no request batching) "
             f"as its own process, {args['clients']} client threads in another, all on "
             f"127.0.0.1. Machine: {results['machine']['cores']} cores, no GPU, shared: other "
             "work (training, tests) may have run at the same time, so the latencies are an "
             f"upper bound, not a capacity figure. Command: `{command}`.", "",
             "## Load held", "",
             "| phase | requests | clients | failures | req/s | p50 ms | p99 ms | "
             + " | ".join(f"{k} p50/p99 ms" for k in loadgen.KINDS) + " |",
             "|---" * (7 + len(loadgen.KINDS)) + "|"]
    phases = [(f"steady, half {i + 1}", half) for i, half in enumerate(halves)]
    phases.append(("version switch", switch["load"]))
    for name, load in phases:
        by_kind = " | ".join(f"{load['by_kind'][k]['p50_ms']:.1f} / "
                             f"{load['by_kind'][k]['p99_ms']:.1f}" for k in loadgen.KINDS)
        lines.append(f"| {name} | {load['requests']:,} | {load['clients']} | "
                     f"{load['failures']} | {load['requests_per_second']:.0f} | "
                     f"{load['p50_ms']:.1f} | {load['p99_ms']:.1f} | {by_kind} |")
    growth = rss["after half 2"] - rss["after half 1"]
    lines += ["", f"Server RSS: {rss['start']} MiB at start (version 1 loaded and warmed), "
              f"{rss['after half 1']} MiB after the first half, {rss['after half 2']} MiB "
              f"after the second ({growth:+d} MiB: flat), {switch['rss_after_mb']} MiB after "
              "the switch (version 1 unloaded, version 2 loaded).", "",
              "## Faults survived", "",
              "| fault | what happened |", "|---|---|",
              f"| version 2 exported into the served base path under load | "
              f"`tf-profiles export` (another process) took {switch['export_seconds']} s "
              f"(exit {switch['export_returncode']}); version 2 answered alone "
              f"{switch['served_new_version_after_export_s']} s later (load, warm-up); "
              f"{switch['load']['failures']} failed requests of {switch['load']['requests']:,}; "
              "answers by version: " + ", ".join(
                  f"{v}: {n:,}" for v, n in switch["answers_by_version"].items()) + "; "
              f"{switch['requests_after_switch']:,} requests after the switch, "
              f"{switch['old_version_answers_after_switch']} of them from version 1 |",
              f"| {len(repeated)} more versions published one after another (copies "
              "renamed into the base path; no load) | each served alone before the next; "
              f"server RSS after each (MiB): {', '.join(map(str, repeated))}; "
              f"{repeated[-1] - repeated[0]:+d} MiB from the first to the last, against "
              f"{version_mb} MiB for one loaded version (RSS after the switch minus after "
              "the steady load) |", "",
              "## Bad inputs", "",
              "Each sent once to the running server; expected = what TensorFlow Serving "
              "answers (its predict_util / server_core sources), OK = a correct answer. "
              f"A normal lookup succeeded afterwards: "
              f"{'yes' if results['alive_after_bad_inputs'] else 'NO'}.", "",
              "| input | expected | status | ms | details |", "|---|---|---|---|---|"]
    for row in results["bad_inputs"]:
        mark = "" if row["as_expected"] else " **unexpected**"
        details = row["details"].replace("|", "\\|")
        lines.append(f"| {row['input']} | {' or '.join(row['expected'])} | {row['status']}{mark}"
                     f" | {row['seconds'] * 1e3:.0f} | {details} |")
    lines += ["", "## Notes", "",
              "- The server replays each version's `assets.extra/tf_serving_warmup_requests` "
              "before serving it (TF Serving's `--enable_model_warmup`). Without it, in this "
              "session, 400 mixed requests from 64 clients straight after start-up took "
              "21.3 s (p99 19.1 s) on this model instead of 3.0 s (p99 0.59 s): "
              "the first calls of a signature, arriving together, stalled everyone.",
              "- A 2**40-element shape in a 10-byte TensorProto used to hold a worker ~10 s "
              "in TensorFlow's allocator before INVALID_ARGUMENT; it is now refused before "
              "parsing (`MAX_INPUT_ELEMENTS` in tf_profiles/serving/server.py).",
              "- Memory across switches: while a new version loads and warms up, both are "
              "resident; the memory the old one frees is kept by the allocator rather than "
              "given back, so RSS stays near that two-version peak. A version kept alive "
              "after its unload would add about its whole size at every switch; the growth "
              "per switch above is far smaller than that.",
              "- Closed loop: each client sends its next request when the previous one is "
              "answered, so p50 ≈ clients / throughput is queueing in the server, not "
              "per-request work (see serving_grpc.md for unloaded latency).", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
