"""The reviewers' section aggregates each analysis over the trained seeds of a group, with a t-interval."""

from numsym_pl.analysis.reviewers_section import ood_part, flips_part


def _cell(seed, acc, normalised, flips):
    summary = {"iia": normalised, "readout": 1.0, "normalised": normalised, "n": 50}
    return {"cell": f"gru-multi-s{seed}", "arch": "gru", "task": "multi", "seed": seed, "fit": {"val/acc_trial": acc},
            "alignments": [], "analyses": {
                "ood_interventions": {"up_down.count/state": {
                    "by_value": {"trained": summary, "above_range": summary}, "max_count": 20,
                    "per_value": {"3": summary, "25": summary}}},
                "phase_flips": {"up_down.count+phase/state": {"iia": {"1": flips, "2": flips},
                                                               "unpatched": {"1": 0.0, "2": 0.1}, "n": 10}}}}


def test_the_figures_are_over_trained_seeds_only(tmp_path):
    results = [_cell(0, 1.0, 0.8, 0.9), _cell(1, 1.0, 0.6, 0.7), _cell(2, 1.0, 0.7, 0.8), _cell(3, 0.2, 0.0, 0.0)]
    text = ood_part(results, tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| gru | multi |"))
    assert "0.700 ± 0.100 [0.452, 0.948] (n 3)" in row  # seeds 0-2; seed 3 did not learn the task
    assert (tmp_path / "figures" / "ood_interventions.png").stat().st_size > 5_000
    flips = next(line for line in flips_part(results, tmp_path).splitlines() if line.startswith("| gru |"))
    assert flips.count("0.800 ± 0.100") == 2 and "0.100 ± 0.000" in flips


def test_a_group_without_a_trained_net_is_marked(tmp_path):
    text = ood_part([_cell(0, 0.1, 0.0, 0.0), _cell(1, 0.2, 0.0, 0.0)], tmp_path)
    assert "| gru (untrained) | multi |" in text


def test_the_share_of_seeds_that_align_has_a_wilson_interval(tmp_path):
    from numsym_pl.analysis.seed_share import MIN_SEEDS, seed_share_section

    def cell(seed, iias):
        record = {"key": "up_down.count/state", "intervention": "das", "iia": iias[0],
                  "replicates": [{"iia": v} for v in iias], "controls": {"null": {"iia": 0.1}}}
        return {"cell": f"lstm-same-s{seed}", "arch": "lstm", "task": "same", "seed": seed,
                "fit": {"val/acc_trial": 1.0}, "alignments": [record], "analyses": {}}

    # three seeds align (their DAS seeds average >= 0.9), the rest do not; one would on its first DAS seed only
    results = [cell(s, [0.95, 0.97]) for s in range(3)] + [cell(3, [0.92, 0.6])]
    results += [cell(s, [0.4, 0.42]) for s in range(4, MIN_SEEDS)]
    text = seed_share_section(results, tmp_path)
    assert f"| lstm | same | up_down.count/state | 3 of {MIN_SEEDS} | 0.38 [0.14, 0.69] |" in text
    assert seed_share_section(results[:MIN_SEEDS - 1], tmp_path) == ""  # too few seeds for a share
