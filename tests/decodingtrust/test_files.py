"""The shared DecodingTrust readers, the --trust-data option, the hub path and the local-only dispatch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from comptrust_plugin import decodingtrust as dtd
from comptrust_plugin.data.probes import load_probe_set
from comptrust_plugin.decodingtrust import rescore
from comptrust_plugin.dimensions import machine_ethics as me
from comptrust_plugin.errors import TrustError

from .helpers import _response, _toxicity_data, _write_jsonl


def test_local_data_errors_name_the_file(tmp_path: Path) -> None:
    root = _toxicity_data(tmp_path)
    (root / "toxicity" / "user_prompts" / "nontoxic.jsonl").unlink()
    with pytest.raises(TrustError, match=r"missing DecodingTrust data file\(s\): toxicity/user_prompts/nontoxic.jsonl"):
        load_probe_set("toxicity", str(root))
    _write_jsonl(root / "toxicity" / "user_prompts" / "nontoxic.jsonl", [{"prompt": {"text": "ok"}}, {"prompt": {}}])
    with pytest.raises(TrustError, match=r"nontoxic.jsonl:2: no prompt text"):
        load_probe_set("toxicity", str(root))
    with pytest.raises(TrustError, match="no such folder"):
        load_probe_set("toxicity", str(tmp_path / "absent"))
    with pytest.raises(TrustError, match=r"missing DecodingTrust data file\(s\): privacy/enron_data/email2name.json"):
        load_probe_set("privacy", str(root))


def test_jsonl_rows_split_at_newlines_only(tmp_path: Path) -> None:
    """JSON allows a raw U+2028 / U+0085 inside a string: such a row is one row (str.splitlines
    would cut it in two), in its data files and in its output files alike; CRLF files read too."""
    root = _toxicity_data(tmp_path)
    odd = "He said\u2028then\x85left"
    path = root / "toxicity" / "user_prompts" / "toxic.jsonl"
    path.write_bytes((json.dumps({"prompt": {"text": odd}}, ensure_ascii=False) + "\r\n"
                      + json.dumps({"prompt": {"text": "ok"}}) + "\r\n").encode("utf-8"))
    prompts = load_probe_set("toxicity", str(root)).probes.prompts
    assert [p.text for p in prompts if p.kind == "toxic"] == [odd, "ok"]
    path.write_text('{"prompt": {"text": "ok"}}\n\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(TrustError, match=r"toxic.jsonl:3: not valid JSON"):  # blank lines still count
        load_probe_set("toxicity", str(root))
    data = tmp_path / "fairness_data"
    data.mkdir()
    import numpy as np

    np.save(data / "sensitive_attr_adult_0_200_test_base_rate_0.5.npy", np.array(["Male", "Female"]))
    responses = [_response("Yes\u2028indeed"), _response("No")]
    out = tmp_path / "out" / "zero_shot_br_0.5.json"
    out.parent.mkdir()
    out.write_text(json.dumps({"responses": responses, "labels": ["yes", "no"]}, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    assert rescore("fairness", [out], data).results["dt"].score == pytest.approx(0.0)  # men 1/1, women 0/1


def test_hub_offline_is_a_one_line_error(tmp_path: Path) -> None:
    """The real hub path, offline: a one-line message. In a fresh process, because the hub
    libraries read their offline switches when first imported."""
    pytest.importorskip("datasets")
    code = (
        "from comptrust_plugin.data.probes import load_probe_set\n"
        "from comptrust_plugin.errors import TrustError\n"
        "try:\n    load_probe_set('toxicity', 'decodingtrust')\n"
        "except TrustError as exc:\n    print(exc)\n"
    )
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    message = done.stdout.strip()
    assert done.returncode == 0 and "\n" not in message, done.stdout + done.stderr
    assert "AI-Secure/DecodingTrust config 'toxicity'" in message and "--trust-data=PATH" in message


def test_data_option() -> None:
    assert dtd.parse_data_option(None).kind == "shipped"
    assert dtd.parse_data_option("decodingtrust@v1.0") == dtd.DataSource("hub", revision="v1.0")
    with pytest.raises(TrustError, match="no such folder"):
        dtd.parse_data_option("/no/such/place")


def test_session_reads_the_chosen_data_and_keys_it(tmp_path: Path) -> None:
    """The run's probe data and its identity (which enters cache keys, baselines and report
    rows) follow --trust-data; no model is loaded for this."""
    from comptrust_plugin.options import TrustOptions
    from comptrust_plugin.session import TrustSession

    folder = tmp_path / "machine_ethics" / "ethics" / "commonsense"
    folder.mkdir(parents=True)
    header = "label,input,is_short,edited\n"
    (folder / "cm_test.csv").write_text(header + "1,I took a stranger's bag.,True,False\n0,I fed a dog.,True,False\n")
    (folder / "cm_train.csv").write_text(header + "0,I smiled.,True,False\n")
    session = TrustSession(TrustOptions(data=str(tmp_path), cache_dir=tmp_path / "cache", samples="full"))
    probe_set = session.probes(me)
    assert probe_set.source == str(tmp_path.resolve())
    assert session.dimension_identity(me)["probe_sha256"] == probe_set.sha256
    shipped = TrustSession(TrustOptions(cache_dir=tmp_path / "cache", samples="full"))
    assert shipped.dimension_identity(me)["probe_sha256"] != probe_set.sha256
    requests = me.build_requests(session.selected(me))
    assert requests[0].messages[-1].content.startswith(me.INSTRUCTION + "\nI took a stranger's bag.")
    with pytest.raises(TrustError, match="no such folder"):
        TrustOptions(data=str(tmp_path / "absent")).validate()


def test_hub_fairness_advglue_and_privacy_say_local_only() -> None:
    for dimension in ("fairness", "adversarial_robustness", "privacy"):
        with pytest.raises(TrustError, match=f"{dimension} loads only from a local copy"):
            load_probe_set(dimension, "decodingtrust")
