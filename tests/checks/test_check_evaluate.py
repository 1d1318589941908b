"""Visible checks of exercise 9 (evaluate.knn_predict): E2, the weighted kNN classifier on frozen features.
A student runs them with `python tools/exercises.py check 9`."""
import torch

from evaluate import knn_predict


def features(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_the_result_is_a_dict_of_N_test_predictions_for_each_k():
    train = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(12) % 3
    predictions = knn_predict(train, labels, torch.randn(5, 4), ks=(1, 3))
    assert isinstance(predictions, dict) and sorted(predictions) == [1, 3], \
        f"knn_predict returns {{k: predictions}} keyed by every k of ks = (1, 3); got {type(predictions).__name__}" \
        + (f" with keys {sorted(predictions)}" if isinstance(predictions, dict) else "")
    for k, p in predictions.items():
        assert tuple(p.shape) == (5,), f"predictions for k = {k}: one class per test sample, (N_test,) = (5,); " \
                                       f"got {tuple(p.shape)}"
        assert not p.is_floating_point(), f"predictions are class indices (integers); got {p.dtype} for k = {k}"


def test_k_1_is_the_nearest_neighbours_class():
    train = features([1, 0, 0], [0, 1, 0], [0, 0, 1])
    labels = torch.tensor([2, 0, 1])
    got = knn_predict(train, labels, features([0.1, 0.9, 0.0], [0.0, 0.2, 0.9]), ks=(1,))[1].tolist()
    assert got == [0, 1], f"with k = 1 each test sample takes the class of its most similar training sample: " \
                          f"[0, 1]; got {got}"


def test_similarity_is_cosine_so_a_features_length_does_not_matter():
    train = features([1, 0], [0.8, 0.6], [0, 1])
    labels = torch.tensor([0, 1, 2])
    test = features([0.7, 0.7])
    near = knn_predict(train, labels, test, ks=(1,))[1].tolist()
    train[2] *= 100.0  # a long feature pointing away from the test sample
    assert knn_predict(train, labels, test, ks=(1,))[1].tolist() == near, \
        "kNN compares cos(f(x), f(x_j)): scaling a training feature by 100 must not change the prediction"


def test_votes_weigh_exp_similarity_over_tau():
    # Class 0: one neighbour at cosine 1. Class 1: two at cosine 0.8. With k = 3 the weights decide.
    train = features([1, 0], [0.8, 0.6], [0.8, -0.6])
    labels = torch.tensor([0, 1, 1])
    test = features([1, 0])
    sharp = knn_predict(train, labels, test, ks=(3,), temperature=0.07)[3].tolist()
    flat = knn_predict(train, labels, test, ks=(3,), temperature=100.0)[3].tolist()
    assert sharp == [0], f"tau = 0.07: the neighbour at cosine 1 votes exp(1 / 0.07), more than the two at 0.8 " \
                         f"together (2 exp(0.8 / 0.07)): class 0; got {sharp}"
    assert flat == [1], f"tau = 100: every vote is about exp(0) = 1, so two neighbours of class 1 beat one of " \
                        f"class 0; got {flat}"


def test_a_k_larger_than_the_training_set_uses_all_of_it():
    train = features([1, 0], [0.9, 0.1], [0, 1])
    labels = torch.tensor([1, 1, 0])
    got = knn_predict(train, labels, features([0.1, 1.0]), ks=(50,), temperature=100.0)
    assert sorted(got) == [50] and got[50].tolist() == [1], \
        "k = 50 with 3 training samples: every training sample votes (k is capped at N_train), so class 1 with two " \
        f"votes wins; got {got}"


def test_the_chunk_size_does_not_change_the_predictions():
    g = torch.Generator().manual_seed(1)
    train, labels, test = torch.randn(30, 6, generator=g), torch.randint(0, 4, (30,), generator=g), torch.randn(7, 6,
                                                                                                           generator=g)
    whole = knn_predict(train, labels, test, ks=(1, 5))
    chunked = knn_predict(train, labels, test, ks=(1, 5), chunk=2)
    for k in (1, 5):
        assert torch.equal(whole[k], chunked[k]), f"chunk only bounds the memory of the (chunk, N_train) similarity: " \
                                                  f"k = {k} predictions must not depend on it"
