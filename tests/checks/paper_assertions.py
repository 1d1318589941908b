"""Assertions of the visible checks (tests/checks/) whose messages speak docs/method.md's terms: they name the
matrix, the row or entry at fault, what it holds and what the equation asks."""
import torch


def assert_close(got, expected, what, atol=1e-6):
    """`got` equals `expected` within atol; else `what`, then the worst entry: where, got and expected."""
    got = torch.as_tensor(got).detach().double()
    expected = torch.as_tensor(expected).detach().double()
    assert got.shape == expected.shape, f"{what}; got shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    difference = (got - expected).abs().nan_to_num(float("inf"))
    if got.numel() == 0 or float(difference.max()) <= atol:
        return
    at = tuple(int(i) for i in torch.unravel_index(difference.argmax(), got.shape)) if got.dim() else ()
    where = f"at {at[0] if len(at) == 1 else at} " if at else ""
    raise AssertionError(f"{what}; {where}got {float(got[at]):.4f}, expected {float(expected[at]):.4f}")


def assert_rows_sum_to_one(matrix, name):
    """Every target and softmax of the method is row-stochastic (docs/method.md §2): entries >= 0, rows sum to 1."""
    matrix = torch.as_tensor(matrix).detach().double()
    assert matrix.dim() == 2, f"{name} is a matrix (N, N); got shape {tuple(matrix.shape)}"
    sums = matrix.sum(dim=1)
    worst = int((sums - 1).abs().nan_to_num(float("inf")).argmax())
    assert abs(float(sums[worst]) - 1) < 1e-6, f"rows of {name} must sum to 1; row {worst} sums to " \
                                               f"{float(sums[worst]):.4f}"
    assert float(matrix.min()) >= 0, f"{name} holds probabilities, all >= 0; its smallest entry is " \
                                     f"{float(matrix.min()):.4f}"


def mass_on(matrix, row):
    """(the column holding most of row `row`'s mass, that mass)."""
    column = int(matrix[row].argmax())
    return column, float(matrix[row, column])
