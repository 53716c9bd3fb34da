import select
import socket
import subprocess
import sys
from pathlib import Path

from tf_profiles.cli import main


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_export_command_writes_the_next_version(trained_model, fresh_base, capsys):
    assert main(["export", "--model", str(trained_model), "--export-base", str(fresh_base),
                 "--k", "3"]) == 0
    assert (fresh_base / "2" / "saved_model.pb").is_file()
    assert main(["export", "--model", str(trained_model), "--export-base", str(fresh_base),
                 "--version", "2"]) == 2
    assert "exists already" in capsys.readouterr().err


def test_serve_and_query_commands(fresh_base):
    port = _free_port()
    script = Path(sys.executable).parent / "tf-profiles"
    server = subprocess.Popen([str(script), "serve", "--model-name", "tiny",
                               "--model-base-path", str(fresh_base), "--port", str(port),
                               "--rest-api-port", str(_free_port())],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 180)
        assert ready, "the server printed nothing within 180 s"
        assert "serving {'tiny': [1]}" in server.stdout.readline()
        query = [str(script), "query", "--server", f"127.0.0.1:{port}", "--model-name", "tiny"]
        lookup = subprocess.run(query + ["lookup", "u1", "nobody"], capture_output=True,
                                text=True, timeout=60)
        assert lookup.returncode == 0, lookup.stderr
        assert "Interested in" in lookup.stdout and "False" in lookup.stdout
        recommend = subprocess.run(query + ["recommend", "u1", "--history", "i1", "i2",
                                            "--top", "3"], capture_output=True, text=True,
                                   timeout=60)
        assert recommend.returncode == 0 and len(recommend.stdout.splitlines()) == 4
        wrong = subprocess.run([str(script), "query", "--server", f"127.0.0.1:{port}",
                                "--model-name", "other", "status"], capture_output=True,
                               text=True, timeout=60)
        assert wrong.returncode == 1 and "NOT_FOUND" in wrong.stderr
    finally:
        server.kill()
        server.wait(timeout=10)
