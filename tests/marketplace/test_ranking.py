from __future__ import annotations

from decimal import Decimal as D

from marketplace.ranking import RankingInput, recommended_score


def _input(**overrides):
    values = {
        "return_percent": D(12),
        "max_drawdown_percent": D(4),
        "traded_days": 60,
        "subscribers_ever": 10,
        "subscribers_retained": 8,
        "average_rating": D(4),
    }
    values.update(overrides)
    return RankingInput(**values)


def test_no_track_record_scores_zero():
    assert recommended_score(_input(traded_days=0)) == 0


def test_each_component_moves_the_score_the_right_way():
    base = recommended_score(_input())
    assert 0 < base < 100
    assert recommended_score(_input(return_percent=D(2))) < base
    assert recommended_score(_input(max_drawdown_percent=D(15))) < base
    assert recommended_score(_input(subscribers_retained=2)) < base
    assert recommended_score(_input(average_rating=D(2))) < base
    assert recommended_score(_input(average_rating=D(5))) > base


def test_short_track_record_is_scaled_down():
    assert recommended_score(_input(traded_days=5)) < recommended_score(_input(traded_days=20))
    assert recommended_score(_input(traded_days=20)) == recommended_score(_input(traded_days=90))


def test_score_is_bounded():
    best = _input(
        return_percent=D(500),
        max_drawdown_percent=D(0),
        subscribers_retained=10,
        average_rating=D(5),
    )
    worst = _input(
        return_percent=D(-80),
        max_drawdown_percent=D(80),
        subscribers_retained=0,
        average_rating=D(1),
    )
    assert recommended_score(best) == D("100.00")
    assert recommended_score(worst) == D("0.00")
