"""The embedding picture (utils/plots.py): PCA and t-SNE of the test features side by side."""
import numpy as np
import torch
from PIL import Image

from utils.plots import plot_embedding, stratified_subset, tsne_2d


def tiny_embedding(num_class=3, per_class=4, dim=256, seed=0):
    """12 random features, 3 classes, each class around its own random direction."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_class).repeat_interleave(per_class)  # (N,)
    centres = torch.randn(num_class, dim, generator=g)  # (C, dim)
    return centres[labels] + 0.1 * torch.randn(len(labels), dim, generator=g), labels  # (N, dim), (N,)


def test_embedding_png_of_a_tiny_test_set_has_pca_and_tsne_side_by_side(tmp_path):
    feats, labels = tiny_embedding()
    path = plot_embedding(feats, labels, ["a", "b", "c"], tmp_path / "embedding.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = Image.open(path).size
    assert width > 2 * height  # two square-ish panels and a legend
    assert [p.name for p in tmp_path.iterdir()] == ["embedding.png"]  # no temp files left


def test_tsne_map_is_deterministic_and_keeps_separate_classes_apart():
    feats, labels = tiny_embedding()
    xy = tsne_2d(feats, seed=0)  # (N, 2)
    assert xy.shape == (12, 2) and np.array_equal(xy, tsne_2d(feats, seed=0))
    distances = torch.cdist(torch.as_tensor(xy), torch.as_tensor(xy)).fill_diagonal_(float("inf"))
    assert torch.equal(labels[distances.argmin(dim=1)], labels)  # 1-nearest neighbour in the map: own class


def test_stratified_subset_keeps_each_class_share_without_randomness():
    labels = np.repeat([0, 1, 2], [500, 300, 200])[np.random.default_rng(0).permutation(1000)]
    keep = stratified_subset(labels, 100)
    assert len(set(keep.tolist())) == 100 and np.bincount(labels[keep]).tolist() == [50, 30, 20]
    assert np.array_equal(keep, stratified_subset(labels, 100))
    assert sorted(stratified_subset(labels, 5000).tolist()) == list(range(1000))  # fewer than asked: all of them
