"""The dashboard's server-drawn bar chart: whole numbers on the axis, bars in proportion, labels thinned."""
import pytest

from helpdesk_gateway.ui import charts


@pytest.mark.parametrize("largest, ticks", [(0, [0, 1]), (2, [0, 1, 2]), (8, [0, 2, 4, 6, 8, 10]),
                                            (17, [0, 4, 8, 12, 16, 20]), (300, [0, 100, 200, 300, 400, 500])])
def test_the_axis_has_whole_round_numbers_reaching_the_largest_value(largest, ticks):
    chart = charts.grouped_bars(["a"], [("created", [largest])])
    assert [t.value for t in chart["ticks"]] == ticks


def test_bars_are_in_proportion_and_side_by_side():
    chart = charts.grouped_bars(["Mon", "Tue"], [("created", [10, 5]), ("solved", [0, 10])])
    created_mon, solved_mon, created_tue, solved_tue = chart["bars"]
    assert created_mon.height == solved_tue.height == 2 * created_tue.height and solved_mon.height == 0
    assert created_mon.x < solved_mon.x < created_tue.x < solved_tue.x
    assert created_mon.label == "Mon: created 10" and solved_mon.series == 1


def test_at_most_about_ten_labels_under_the_axis():
    chart = charts.grouped_bars([str(d) for d in range(31)], [("created", [1] * 31)])
    assert 8 <= len(chart["labels"]) <= 11
