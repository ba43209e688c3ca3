"""Tests of how the CLI words errors of the operating system, JSON files and settings, in Portuguese and English.

Each error must name the value (path, key, variable) and the fix in the
language of the messages, without Python's own English texts (`strerror`,
codec and decoder messages, exception reprs).
"""

from __future__ import annotations

import errno
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import i18n
from cluster.error_text import describe_json_error, describe_os_error, describe_unicode_error, json_value_text
from tests.test_i18n import ENGLISH, LAYOUT, PORTUGUESE, _cluster

# The rest of a cluster.json error: what the file must contain.
LAYOUT_HINT_PT = ('cluster.json deve ser um objeto JSON com as chaves "sync_nodes" e "store_nodes", cada uma com '
                  'uma lista de strings "host:porta:porta_de_cluster", como o `cluster run` o grava')
LAYOUT_HINT_EN = ('cluster.json must be a JSON object with the keys "sync_nodes" and "store_nodes", each a list of '
                  '"host:port:cluster_port" strings, as `cluster run` writes it')
# Python's own words, which no Portuguese error may contain.
PYTHON_WORDS = ("No such file", "Is a directory", "Not a directory", "Errno", "codec", "Expecting",
                "object is not", "KeyError", "None", "True")
# Flags of a sync node that fails on its settings before it opens a port.
SYNC_FLAGS = ["sync", "--id", "1", "--port", "5", "--cluster-port", "6", "--sync-nodes", "127.0.0.1:5:6",
              "--store-nodes", "127.0.0.1:7:8"]
ENTRY = "1\t1\t2\t1\t1\thello\n"


def _error(result_stderr: str) -> str:
    return result_stderr.strip().removeprefix("cluster: erro: ")


def _closed_port() -> int:
    """Return a loopback port that nothing listens on (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_no_python_words(text: str) -> None:
    for word in PYTHON_WORDS:
        assert word not in text, f"{word!r} in {text!r}"


# --- Operating-system errors ------------------------------------------------------------


def test_run_input_missing_portuguese(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"

    result = _cluster(["run", "--input", str(missing), "--data-dir", str(tmp_path / "data")], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr) == (
        f"não foi possível ler --input {missing}: arquivo ou diretório não encontrado; passe um arquivo de texto "
        "UTF-8 com uma mensagem por linha")


def test_run_input_directory_portuguese(tmp_path: Path) -> None:
    result = _cluster(["run", "--input", str(tmp_path), "--data-dir", str(tmp_path / "data")], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr).startswith(f"não foi possível ler --input {tmp_path}: é um diretório; ")


def test_run_data_dir_under_file_portuguese(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    data_dir = tmp_path / "file" / "data"

    result = _cluster(["run", "--data-dir", str(data_dir)], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr) == (
        f"não foi possível criar --data-dir {data_dir}: uma parte do caminho não é um diretório; "
        "passe um diretório em que você possa escrever")


def test_node_key_file_unwritable_portuguese(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    data_dir = tmp_path / "file" / "data"

    result = _cluster([*SYNC_FLAGS, "--data-dir", str(data_dir)], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr) == (
        f"não foi possível criar o arquivo de chaves {data_dir / 'cluster.key'}: uma parte do caminho não é um "
        "diretório; passe um --data-dir em que você possa escrever, ou defina CLUSTER_KEY_FILE")


def test_key_file_directory_portuguese(tmp_path: Path) -> None:
    result = _cluster([*SYNC_FLAGS, "--data-dir", str(tmp_path), "--key-file", str(tmp_path)], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr) == (
        f"não foi possível ler --key-file {tmp_path}: é um diretório; confira o caminho e as permissões")


def test_health_refused_portuguese() -> None:
    port = _closed_port()

    result = _cluster(["health", "--port", str(port)], PORTUGUESE)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"o nó em 127.0.0.1:{port} não respondeu: conexão recusada, então nada escuta nessa porta; confira se há "
        "um nó rodando ali e se --host e --port indicam a porta de clientes dele")


def test_health_refused_english() -> None:
    port = _closed_port()

    result = _cluster(["health", "--port", str(port)], ENGLISH)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"node at 127.0.0.1:{port} did not answer: connection refused, so nothing listens on that port; check "
        "that a node runs there and that --host and --port give its client port")


def test_status_single_node_portuguese() -> None:
    port = _closed_port()

    table = _cluster(["status", "--port", str(port)], PORTUGUESE)
    as_json = _cluster(["status", "--port", str(port), "--json"], PORTUGUESE)

    rows = table.stdout.splitlines()
    assert table.returncode == 1
    assert rows[0].split()[0] == "nó"
    assert rows[1].split()[:2] == ["nó", f"127.0.0.1:{port}"]
    assert json.loads(as_json.stdout)[0]["error"] == "conexão recusada, então nada escuta nessa porta"


@pytest.fixture
def portuguese_here() -> Iterator[None]:
    """Translate `_()` in this process to Brazilian Portuguese for one test, then read the real locale again."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
            patch.delenv(name, raising=False)
        patch.setenv("LANGUAGE", "pt_BR")
        i18n.reload()
        yield
    i18n.reload()


@pytest.mark.usefixtures("portuguese_here")
@pytest.mark.parametrize(
    ("code", "text"),
    [
        (errno.ENOENT, "arquivo ou diretório não encontrado"),
        (errno.EISDIR, "é um diretório"),
        (errno.ENOTDIR, "uma parte do caminho não é um diretório"),
        (errno.EACCES, "permissão negada"),
        (errno.EPERM, "permissão negada"),
        (errno.ECONNREFUSED, "conexão recusada, então nada escuta nessa porta"),
        (errno.EADDRINUSE, "endereço já em uso"),
        (errno.ENOSPC, "não há espaço livre no dispositivo"),
        (errno.EROFS, "sistema de arquivos somente leitura"),
        (errno.ETIMEDOUT, "tempo de conexão esgotado"),
    ],
)
def test_os_error_wording_portuguese(code: int, text: str) -> None:
    assert describe_os_error(OSError(code, "English strerror")) == text


def test_os_error_wording_fallback() -> None:
    assert describe_os_error(OSError(errno.EIO, "Input/output error")) == "Input/output error"
    assert describe_os_error(OSError("Multiple exceptions")) == "Multiple exceptions"


@pytest.mark.usefixtures("portuguese_here")
def test_json_error_wording_portuguese() -> None:
    with pytest.raises(json.JSONDecodeError) as error:
        json.loads('{\n  "a": }')
    with pytest.raises(UnicodeDecodeError) as utf8_error:
        b"ab\xffc".decode("utf-8")

    assert describe_json_error(error.value) == "JSON inválido na linha 2, coluna 8: esperava um valor"
    assert describe_unicode_error(utf8_error.value) == "byte inválido 0xff na posição 3"


def test_json_value_text() -> None:
    assert json_value_text(None) == "null"
    assert json_value_text(True) == "true"
    assert json_value_text("é") == '"é"'
    assert json_value_text({"a": [1]}) == '{"a": [1]}'
    assert len(json_value_text("x" * 500)) == 60


# --- cluster.json of `cluster status` ---------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fault"),
    [
        ("nope\n", "não é JSON válido (JSON inválido na linha 1, coluna 1: esperava um valor)"),
        ('{"sync_nodes": []\n', "não é JSON válido (JSON inválido na linha 2, coluna 1: esperava ',' entre dois "
                                "itens)"),
        ("{}\n", 'não tem a chave "sync_nodes"'),
        ('{"sync_nodes": ["127.0.0.1:1:2"]}\n', 'não tem a chave "store_nodes"'),
        ("[1]\n", "contém [1] em vez de um objeto JSON"),
        ('{"sync_nodes": null, "store_nodes": []}\n', '"sync_nodes" deve ser uma lista de strings, mas é null'),
        ('{"sync_nodes": [true], "store_nodes": []}\n',
         '"sync_nodes" deve ser uma lista de strings, mas é [true]'),
    ],
    ids=["not-json", "unclosed", "empty-object", "no-store-nodes", "array", "null-list", "bool-entry"],
)
def test_status_layout_portuguese(tmp_path: Path, content: str, fault: str) -> None:
    layout = tmp_path / "cluster.json"
    layout.write_text(content, encoding="utf-8")

    result = _cluster(["status", "--data-dir", str(tmp_path)], PORTUGUESE)

    separator = ": " if fault.startswith('"') else " "
    assert result.returncode == 2
    assert _error(result.stderr) == f"{layout}{separator}{fault}; {LAYOUT_HINT_PT}"


def test_status_layout_english(tmp_path: Path) -> None:
    layout = tmp_path / "cluster.json"
    layout.write_text("{}", encoding="utf-8")

    result = _cluster(["status", "--data-dir", str(tmp_path)], ENGLISH)

    assert result.returncode == 2
    assert result.stderr.strip() == f'cluster: error: {layout} has no key "sync_nodes"; {LAYOUT_HINT_EN}'


def test_status_layout_directory_portuguese(tmp_path: Path) -> None:
    layout = tmp_path / "cluster.json"
    layout.mkdir()

    result = _cluster(["status", "--data-dir", str(tmp_path)], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr).startswith(f"não foi possível ler {layout}: é um diretório; passe o --data-dir")


# --- Data files of `cluster verify` ------------------------------------------------------------


def test_verify_missing_directory_portuguese(tmp_path: Path) -> None:
    missing = tmp_path / "missing"

    result = _cluster(["verify", str(missing)], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr).startswith(f"{missing}: não encontrado; passe ao `cluster verify` o diretório")


def test_verify_file_not_directory_portuguese(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("", encoding="utf-8")

    result = _cluster(["verify", str(path)], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr).startswith(f"{path}: não é um diretório; ")


def test_verify_backup_invalid_utf8_portuguese(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text(LAYOUT, encoding="utf-8")
    backup = tmp_path / "backup_1.txt"
    backup.write_bytes(b"1\t1\t2\t1\t1\t\xff\n")

    result = _cluster(["verify", str(tmp_path)], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr).startswith(
        f"{backup}:1: a linha não é UTF-8 válido: byte inválido 0xff na posição 11. Restaure ")
    _assert_no_python_words(result.stderr)


def test_verify_backup_directory_portuguese(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text(LAYOUT, encoding="utf-8")
    (tmp_path / "backup_1.txt").mkdir()

    result = _cluster(["verify", str(tmp_path)], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr) == (
        f"{tmp_path / 'backup_1.txt'}: não pode ser lido: é um diretório; confira se é um arquivo que você pode "
        "ler, como uma execução o grava")


@pytest.mark.parametrize(
    ("state", "fault"),
    [
        ("5", "esperava um objeto JSON, mas o arquivo contém 5. Restaure "),
        ("{", "arquivo de estado inválido (JSON inválido na linha 1, coluna 2: esperava uma chave entre aspas "
              "duplas). Restaure "),
        ('{"leader_term": 1, "config": 5}',
         '"config" deve ser um objeto JSON, mas é 5; um arquivo de estado de store contém {"leader_term": N, '
         '"synced_epoch": N, "config": {"epoch": N, '),
        ("{}", 'falta o campo "leader_term"; '),
        ('{"leader_term": -1}', f'"leader_term" deve ser um inteiro de 0 a {2**63 - 1}, mas é -1; '),
        ('{"leader_term": 1}', 'falta o campo "config"; '),
        ('{"leader_term": 1, "config": {"epoch": 1, "term": 1, "primary": 1}}', 'falta o campo "config.backups"; '),
        ('{"leader_term": 1, "config": {"epoch": null, "term": 1, "primary": 1, "backups": []}}',
         f'"config.epoch" deve ser um inteiro de 0 a {2**63 - 1}, mas é null; '),
        ('{"leader_term": 1, "config": {"epoch": 1, "term": 1, "primary": 1, "backups": [true]}}',
         '"config.backups" deve ser uma lista de ids distintos de nós store, de 1 a '
         f'{2**63 - 1}, sem o primário, mas é [true]; '),
    ],
    ids=["number", "not-json", "config-number", "no-leader-term", "negative-term", "no-config", "no-backups",
         "null-epoch", "bool-backup"],
)
def test_verify_store_state_portuguese(tmp_path: Path, state: str, fault: str) -> None:
    (tmp_path / "cluster.json").write_text(LAYOUT, encoding="utf-8")
    path = tmp_path / "store_1.state.json"
    path.write_text(state, encoding="utf-8")

    result = _cluster(["verify", str(tmp_path)], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr).startswith(f"{path}: {fault}")
    _assert_no_python_words(result.stderr)


@pytest.mark.parametrize(
    ("lines", "fault"),
    [
        ('{"event": "sent", "lamport": 2, "text": "a"}\n',
         '1: o registro "sent" precisa do campo "request_id" com um inteiro, mas ele é null'),
        ('{"event": "sent", "request_id": 1, "lamport": 2, "text": 5}\n',
         '1: o registro "sent" precisa do campo "text" com uma string, mas ele é 5'),
        ('{"event": "acked", "request_id": 1, "seq": "7"}\n',
         '1: o registro "acked" precisa do campo "seq" com um inteiro, mas ele é "7"'),
        ('{"event": \n{"event": "finished"}\n', "1: a linha não é JSON válido na coluna 11: esperava um valor"),
    ],
    ids=["no-request-id", "text-number", "seq-string", "not-json"],
)
def test_verify_client_log_portuguese(tmp_path: Path, lines: str, fault: str) -> None:
    (tmp_path / "cluster.json").write_text(LAYOUT, encoding="utf-8")
    path = tmp_path / "client_1.jsonl"
    path.write_text(lines, encoding="utf-8")

    result = _cluster(["verify", str(tmp_path)], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr) == f"{path}:{fault}"


def test_verify_client_log_cut_character_ignored(tmp_path: Path) -> None:
    """A process killed while writing may cut the last line inside a UTF-8 character."""
    (tmp_path / "cluster.json").write_text(LAYOUT, encoding="utf-8")
    (tmp_path / "client_1.jsonl").write_bytes(b'{"event": "finished"}\n{"event": "sent", "text": "\xc3')

    result = _cluster(["verify", str(tmp_path)], PORTUGUESE)

    assert result.returncode == 0, result.stderr


def test_verify_sync_events_term_portuguese(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text(LAYOUT, encoding="utf-8")
    path = tmp_path / "events_sync_1.jsonl"
    path.write_text('{"event": "became_leader", "term": null}\n', encoding="utf-8")

    result = _cluster(["verify", str(tmp_path)], PORTUGUESE)

    assert result.returncode == 2
    assert _error(result.stderr) == (
        f'{path}:1: o registro "became_leader" precisa do campo "term" com um inteiro, mas ele é null')


# --- Plural forms ----------------------------------------------------------------------------


def _store_lagging_by_one(data_dir: Path) -> None:
    """Write a run whose primary, store 1, committed one entry that its backup, store 2, lacks."""
    (data_dir / "cluster.json").write_text(LAYOUT, encoding="utf-8")
    config = {"epoch": 1, "term": 1, "primary": 1, "backups": [2]}
    (data_dir / "store_1.state.json").write_text(json.dumps({"leader_term": 1, "config": config}), encoding="utf-8")
    for name in ("store_1.wal", "backup_1.txt", "output.txt"):
        (data_dir / name).write_text(ENTRY, encoding="utf-8")


def test_zero_entries_plural_portuguese(tmp_path: Path) -> None:
    _store_lagging_by_one(tmp_path)

    result = _cluster(["verify", str(tmp_path)], PORTUGUESE)

    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert "      - o nó store 2 contém 0 entradas, mas o log commitado tem 1" in lines
    assert "1 mensagem em output.txt; 0 de 0 mensagens enviadas confirmadas" in lines


def test_zero_entries_plural_english(tmp_path: Path) -> None:
    _store_lagging_by_one(tmp_path)

    result = _cluster(["verify", str(tmp_path)], ENGLISH)

    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert "      - store node 2 holds 0 entries but 1 are committed" in lines
    assert "1 message in output.txt; 0 of 0 sent messages acknowledged" in lines


# --- Help texts and settings ------------------------------------------------------------------


def test_help_command_placeholder_portuguese() -> None:
    result = _cluster(["--help"], PORTUGUESE)

    assert result.stdout.startswith("uso: cluster [-h] COMANDO ...")
    assert "COMMAND" not in result.stdout


def test_run_help_portuguese() -> None:
    result = _cluster(["run", "--help"], PORTUGUESE)

    text = " ".join(result.stdout.split())  # argparse wraps help to the terminal width
    assert result.returncode == 0
    assert "Inicia nós sync, nós store e clientes nesta máquina, um processo por nó" in text
    assert ("--bug BUG liga erros de protocolo pelo nome, separados por vírgula; bugs conhecidos: double_vote, "
            "early_ack, skip_epoch_check, no_fence") in text


@pytest.mark.parametrize("command", ["run", "soak", "sync", "store", "client", "status", "verify", "health"])
def test_every_command_help_has_description(command: str) -> None:
    result = _cluster([command, "--help"], ENGLISH)

    paragraphs = result.stdout.split("\n\n")
    assert result.returncode == 0
    assert not paragraphs[1].startswith(("options:", "positional arguments:")), result.stdout


@pytest.mark.parametrize("command", ["status", "soak"])
def test_data_dir_placeholder_matches_help(command: str) -> None:
    result = _cluster([command, "--help"], ENGLISH)

    text = " ".join(result.stdout.split())
    assert "--data-dir DIR " in text
    assert "DATA_DIR" not in text


def test_trace_messages_invalid_portuguese(tmp_path: Path) -> None:
    result = _cluster([*SYNC_FLAGS, "--data-dir", str(tmp_path)], {**PORTUGUESE, "TRACE_MESSAGES": "maybe"})

    assert result.returncode == 2
    assert _error(result.stderr) == (
        "TRACE_MESSAGES deve ser 1, true, yes ou on para ligar, ou 0, false, no, off ou vazio para desligar "
        "(maiúsculas ou minúsculas); recebido 'maybe'")
    assert list(tmp_path.iterdir()) == []


def test_invalid_bug_writes_no_key(tmp_path: Path) -> None:
    result = _cluster([*SYNC_FLAGS, "--data-dir", str(tmp_path), "--bug", "nope"], ENGLISH)

    assert result.returncode == 2
    assert list(tmp_path.iterdir()) == []
