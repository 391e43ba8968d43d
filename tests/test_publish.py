"""numsym_pl publish: a study's results, report and every cell's net, loadable without training."""

import json

import pytest
import torch
from safetensors.torch import load_file

from numsym_pl.bridges.export import export
from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.errors import ConfigError
from numsym_pl.jsonfile import read_json, write_json
from numsym_pl.study.publish import publish
from tests.test_bridges import _checkpoint, _net, _tokens


def _study(tmp_path):
    """A study directory with two finished cells (one exported its net, one left only its checkpoint)
    and a failed one."""
    run = tmp_path / "run"
    results = []
    for cell, exported in (("gru-multi-s0", True), ("gru-multi-s1", False)):
        fit = run / "cells" / cell / "fit" / "checkpoints"
        fit.mkdir(parents=True)
        ckpt = _checkpoint(fit, _net("gru", seed=len(results)))
        if exported:
            export(ckpt, run / "cells" / cell / "net")
        results.append({"cell": cell, "arch": "gru", "task": "multi", "seed": len(results), "size": None,
                        "fit": {"val/acc_trial": 1.0}, "ckpt_path": str(ckpt), "alignments": [], "analyses": {}})
    results.append({"cell": "gru-multi-s2", "arch": "gru", "task": "multi", "seed": 2, "size": None,
                    "error": "CellFailed: boom"})
    (run / "results.json").write_text(json.dumps(results))
    (run / "study.json").write_text(json.dumps({"name": "tiny"}))
    return run, results


def test_publish_writes_every_finished_cells_net_in_half_precision(tmp_path):
    run, results = _study(tmp_path)
    dest = tmp_path / "published"
    assert publish(run, dest) == ["gru-multi-s0", "gru-multi-s1"]
    x = _tokens(_net("gru"))
    for r in results[:2]:
        net_dir = dest / "nets" / r["cell"]
        assert {p.name for p in net_dir.iterdir()} == {"model.safetensors", "config.json"}
        assert all(t.dtype == torch.float16 for t in load_file(net_dir / "model.safetensors").values())
        assert json.loads((net_dir / "config.json").read_text())["weights_dtype"] == "float16"
        lm, _ = load_checkpoint(net_dir)  # what `numsym_pl das --ckpt_path DIR` reads
        reference = load_checkpoint(r["ckpt_path"])[0].net.eval()(x)
        err = (lm.net.eval()(x) - reference).abs().max().item()
        assert 0 < err < 1e-2  # rounded to float16, no more
    assert (dest / "results.json.gz").is_file() and not (dest / "results.json").exists()
    published = read_json(dest / "results.json")  # every reader takes the compressed file by its plain name
    assert [r.get("ckpt_path") for r in published] == [(dest / "nets" / c).as_posix()
                                                       for c in ("gru-multi-s0", "gru-multi-s1")] + [None]
    assert json.loads((dest / "study.json").read_text()) == {"name": "tiny"}
    (dest / "results.json").write_text("[]")  # an earlier publication's, uncompressed: replaced
    publish(run, dest)
    assert not (dest / "results.json").exists() and read_json(dest / "results.json") == published


def test_compressed_json_reads_back_and_a_damaged_one_is_named(tmp_path):
    data = [{"cell": "a", "iia": 0.5}]
    first = write_json(tmp_path / "r.json.gz", data).read_bytes()
    assert read_json(tmp_path / "r.json") == data and write_json(tmp_path / "r.json.gz", data).read_bytes() == first
    (tmp_path / "r.json.gz").write_bytes(first[:20])  # cut off
    with pytest.raises(ConfigError, match="r.json.gz is not valid JSON"):
        read_json(tmp_path / "r.json", "results")
    with pytest.raises(ConfigError, match="no such file"):
        read_json(tmp_path / "other.json")


def test_publish_in_float32_keeps_the_weights_and_refuses_its_own_directory(tmp_path):
    run, results = _study(tmp_path)
    publish(run, tmp_path / "full", dtype="float32")
    net = load_checkpoint(tmp_path / "full" / "nets" / "gru-multi-s0")[0].net.eval()
    x = _tokens(net)
    assert torch.equal(net(x), load_checkpoint(results[0]["ckpt_path"])[0].net.eval()(x))
    with pytest.raises(ConfigError, match="the study's own directory"):
        publish(run, run)
    with pytest.raises(ConfigError, match="dtype"):
        publish(run, tmp_path / "x", dtype="int8")


def test_publish_command_writes_the_report_and_names_bad_input(tmp_path, cli):
    run, _ = _study(tmp_path)
    ok = cli("publish", run, tmp_path / "dest", cwd=tmp_path)
    assert ok.returncode == 0 and "published 2 nets" in ok.stdout, ok.stderr
    assert "gru-multi-s2" in (tmp_path / "dest" / "report.md").read_text()  # the failed cell is named
    bad = cli("publish", tmp_path / "nowhere", tmp_path / "d2", cwd=tmp_path)
    assert bad.returncode == 2 and "has no results.json" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
