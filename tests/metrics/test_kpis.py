"""KPIs from bucket histograms, thresholds from configuration, comparisons."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxloop_metrics.config import KpiConfig, Taxonomy, load_kpi_config
from cxloop_metrics.kpis import compare_kpis, compute_kpis
from cxloop_metrics.measures import Totals
from cxruntime.errors import ConfigurationError


def totals(nps: list[int], csat: list[int], ces: list[int]) -> Totals:
    t = Totals(responses=max(sum(nps), sum(csat), sum(ces)))
    t.nps = list(nps)
    t.csat = list(csat)
    t.ces = list(ces)
    return t


def test_kpis_from_histograms_by_hand() -> None:
    # NPS: 0-6 -> 2+1+1 = 4 detractors, 7-8 -> 3 passives, 9-10 -> 5 promoters, n = 12
    # -> (5 - 4) / 12 = 8.333 points. CSAT: answers 1,2,3,4,4,5,5,5 -> top-2 5/8 = 62.5%,
    # mean 29/8 = 3.625. CES: 1x2, 5x3, 7x1 -> mean (2 + 15 + 7) / 5 = 4.8, high share 4/5.
    t = totals(
        nps=[2, 0, 0, 0, 0, 1, 1, 2, 1, 3, 2],
        csat=[1, 1, 1, 2, 3],
        ces=[0, 1, 0, 0, 3, 0, 1],
    )
    k = compute_kpis(t, KpiConfig(), min_sample=10)
    assert (k.nps.promoters, k.nps.passives, k.nps.detractors, k.nps.n) == (5, 3, 4, 12)
    assert k.nps.score == pytest.approx(100 / 12)
    assert k.csat.top2_pct == pytest.approx(62.5)
    assert k.csat.mean == pytest.approx(3.625)
    assert k.ces.mean == pytest.approx(4.8)
    assert k.ces.high_share == pytest.approx(0.8)
    assert k.nps.ci95 is not None
    assert k.nps.score is not None
    assert k.nps.ci95[0] < k.nps.score < k.nps.ci95[1]
    assert not k.low_sample
    assert compute_kpis(t, KpiConfig(), min_sample=13).low_sample


def test_thresholds_come_from_configuration() -> None:
    t = totals(nps=[0] * 8 + [4, 0, 0], csat=[0, 0, 2, 2, 0], ces=[0, 0, 0, 5, 0, 0, 0])
    strict = KpiConfig()
    lenient = KpiConfig.model_validate(
        {
            "nps": {"promoter_min": 8, "detractor_max": 5},
            "csat": {"top_box_min": 3},
            "ces": {"high_min": 4},
        }
    )
    assert compute_kpis(t, strict, min_sample=1).nps.score == 0.0
    assert compute_kpis(t, lenient, min_sample=1).nps.score == 100.0
    assert compute_kpis(t, strict, min_sample=1).csat.top2_pct == 50.0
    assert compute_kpis(t, lenient, min_sample=1).csat.top2_pct == 100.0
    assert compute_kpis(t, strict, min_sample=1).ces.high_share == 0.0
    assert compute_kpis(t, lenient, min_sample=1).ces.high_share == 1.0


def test_empty_group_has_no_values_but_counts_zero() -> None:
    k = compute_kpis(Totals(), KpiConfig(), min_sample=30)
    assert k.responses == 0
    assert k.nps.score is None
    assert k.nps.ci95 is None
    assert k.csat.top2_pct is None
    assert k.ces.mean is None
    assert k.sentiment.avg is None
    assert k.low_sample


def test_intervals_are_cut_to_the_scale() -> None:
    # CES 7, 6, 1, 4: mean 4.5, sd sqrt(7) = 2.6458, half = t(0.975, 3) * 2.6458 / 2 = 4.2101
    # -> [0.29, 8.71] on a 1-7 scale: cut to [1, 7]. CSAT 5, 5, 4, 2: mean 4, sd sqrt(2),
    # half = 3.1824 * 1.4142 / 2 = 2.2503 -> [1.75, 6.25] on 1-5: cut to [1.75, 5].
    t = totals(nps=[0] * 11, csat=[0, 1, 0, 1, 2], ces=[1, 0, 0, 1, 0, 1, 1])
    t.sentiment_n, t.sentiment_sum, t.sentiment_sumsq = 3, 2.15, 0.9**2 + 0.95**2 + 0.3**2
    k = compute_kpis(t, KpiConfig(), min_sample=1)
    assert k.ces.mean == pytest.approx(4.5)
    assert k.ces.ci95 == (1.0, 7.0)
    assert k.csat.mean == pytest.approx(4.0)
    assert k.csat.mean_ci95 is not None
    assert k.csat.mean_ci95[0] == pytest.approx(4 - 2.2503, abs=1e-4)
    assert k.csat.mean_ci95[1] == 5.0
    # Sentiment 0.9, 0.95, 0.3: mean 0.7167 +/- 0.8986 reaches past 1.
    assert k.sentiment.avg_ci95 is not None
    assert k.sentiment.avg_ci95[0] == pytest.approx(0.71667 - 0.89862, abs=1e-4)
    assert k.sentiment.avg_ci95[1] == 1.0
    # A change of the CES mean lies within -6..6: two answers 1 and 7 on each side give a
    # Welch interval of 0 +/- t(0.975, 2) * sqrt(18) = +/-18.25.
    wide = totals(nps=[0] * 11, csat=[0] * 5, ces=[1, 0, 0, 0, 0, 0, 1])
    k_wide = compute_kpis(wide, KpiConfig(), min_sample=1)
    change = compare_kpis(k_wide, k_wide)["ces_mean"]
    assert change.ci95 == (-6.0, 6.0)
    assert not change.significant


def test_one_answer_lies_outside_its_nps_interval_and_is_flagged_low_sample() -> None:
    # Documented in docs/metrics.md: the adjusted-Wald interval is centred on the adjusted
    # estimate, (0 + 0.75 - 1.75) / 4 = -25 points for one detractor, so at n = 1 the
    # observed -100 lies outside [-98.5, 48.5]; low_sample says not to read it.
    one = totals(nps=[1] + [0] * 10, csat=[0] * 5, ces=[0] * 7)
    k = compute_kpis(one, KpiConfig(), min_sample=30)
    assert k.nps.score == -100.0
    assert k.nps.ci95 is not None
    assert k.nps.ci95[0] == pytest.approx(-98.4987, abs=1e-3)
    assert k.nps.ci95[1] == pytest.approx(48.4987, abs=1e-3)
    assert k.low_sample


def test_comparison_flags_only_real_changes() -> None:
    before = totals(nps=[10, 0, 0, 0, 0, 0, 10, 20, 20, 20, 20], csat=[5] * 5, ces=[10] * 7)
    after = totals(nps=[30, 0, 0, 0, 0, 0, 20, 20, 10, 10, 10], csat=[5] * 5, ces=[10] * 7)
    changes = compare_kpis(
        compute_kpis(before, KpiConfig(), min_sample=1),
        compute_kpis(after, KpiConfig(), min_sample=1),
    )
    # before: 40 promoters, 20 detractors of 100 = 20; after: 20 and 50 = -30.
    assert changes["nps"].diff == pytest.approx(-50.0)
    assert changes["nps"].significant
    assert changes["csat_top2_pct"].diff == pytest.approx(0.0)
    assert not changes["csat_top2_pct"].significant
    assert not changes["ces_mean"].significant


def test_taxonomy_rolls_up_dotted_and_configured_parents() -> None:
    tax = Taxonomy(parents={"parcel_locker": "delivery", "delivery": "fulfilment"})
    assert tax.ancestors("delivery.tracking") == ["fulfilment", "delivery", "delivery.tracking"]
    assert tax.at_level("parcel_locker", 1) == "fulfilment"
    assert tax.at_level("parcel_locker", 2) == "delivery"
    assert tax.at_level("checkout", 2) == "checkout"
    assert tax.children_of("fulfilment") == {"delivery", "parcel_locker"}
    looped = Taxonomy(parents={"a": "b", "b": "a"})
    assert looped.ancestors("a") == ["b", "a"]


def test_packaged_config_loads_and_bad_config_names_the_field(tmp_path: Path) -> None:
    assert load_kpi_config(None) == KpiConfig()
    (tmp_path / "kpis.yaml").write_text("nps:\n  promoter_min: 6\n  detractor_max: 6\n")
    with pytest.raises(ConfigurationError, match="detractor_max must be below"):
        load_kpi_config(tmp_path)
    (tmp_path / "kpis.yaml").write_text("prometheus:\n  windows: [2d]\n")
    with pytest.raises(ConfigurationError, match="unknown"):
        load_kpi_config(tmp_path)
