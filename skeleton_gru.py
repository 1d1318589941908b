"""A bidirectional GRU skeleton encoder: the recurrent encoder of the paper's encoder comparison (docs/method.md §8).

C2VL's paper trains GRU, GCN and Transformer encoders with its method. The recurrent skeleton encoder the field
reuses most is ISC's BIGRU (Thoker et al., ACM MM 2021; reused by CMD, Mao et al., ECCV 2022): the 25 joints x 3
coordinates x 2 persons of a frame are one input vector, a 3-layer bidirectional GRU reads the T frames, and the
feature is both directions' state concatenated. This file builds it with ISC's parameter names (`encoder.gru.*`,
the classifier `fc`), so that its released weights load strictly:

    u_t = x[:, t] as one vector, ordered (joint v, coordinate c, person m), m fastest: 150 numbers (ISC's order)
    GRU cell, for each layer and direction (torch.nn.GRU), with h_0 = 0:
        r_t = sigmoid(W_ir u_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = sigmoid(W_iz u_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in u_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}
    layer l > 0 reads [h_t^fwd ; h_t^bwd] of layer l - 1; f(X) is read from the last layer, in one of two steppings:
    sequence   the whole sequence in one pass: the forward direction reads t = 1 .. T, the backward one t = T .. 1;
                   f(X) = [h_T^fwd ; h_1^bwd], each direction's state after it has read the whole sequence
    frame      ISC's (moco/GRU.py): one frame at a time, every state carried to the next frame, so the "backward"
               direction (its own weights) also reads t = 1 .. T;   f(X) = [h_T^fwd ; h_T^bwd]

ISC's and CMD's released weights compute their own features only with the frame stepping: encoders.build_encoder
gives it to weights that come without a run of train.py; a run records its --gru_stepping (train.py's default:
sequence) in heads.pt, and evaluate.py --gru_stepping overrides both.

Two widths, like ST-GCN's: "standard" (hidden 1024, ISC's and CMD's; f is 2048-d, 45 M parameters) and "quarter"
(hidden 256; f is 512-d, 3.0 M parameters).
Not here: ST-GCN (skeleton_gcn.py), the Transformer (skeleton_transformer.py), checkpoint files (utils/checkpoints.py).
"""
import torch
import torch.nn as nn

from utils.checkpoints import feature_extractor, size_by_width

NUM_JOINTS, PERSONS, COORDINATES = 25, 2, 3
SIZES = {"standard": 1024, "quarter": 256}  # hidden size of every layer and direction
LAYERS = 3
STEPPINGS = ("sequence", "frame")  # train.py / evaluate.py --gru_stepping: the whole-sequence pass | ISC's


class Recurrent(nn.Module):
    """ISC's EncoderRNN: the bidirectional GRU under the name `gru`, so that the keys are `encoder.gru.*`."""

    def __init__(self, input_size, hidden, layers):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden, num_layers=layers, bidirectional=True, batch_first=True)


class SkeletonGRU(nn.Module):
    """Bidirectional GRU on (N, C, T, V, M) skeletons: logits (N, num_class), or f(X) (N, 2 * hidden) if num_class
    is None. stepping: "sequence" (the whole-sequence pass) or "frame" (ISC's), see the module docstring."""

    def __init__(self, num_class=None, size="standard", stepping="sequence"):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"unknown GRU size {size!r}: use one of {sorted(SIZES)}")
        if stepping not in STEPPINGS:
            raise ValueError(f"--gru_stepping: use one of {', '.join(STEPPINGS)}, got {stepping!r}")
        self.num_class, self.size, self.stepping = num_class, size, stepping
        self.feature_dim = 2 * SIZES[size]
        self.encoder = Recurrent(NUM_JOINTS * COORDINATES * PERSONS, SIZES[size], LAYERS)
        self.fc = nn.Linear(self.feature_dim, num_class) if num_class else None
        for name, weight in self.encoder.gru.named_parameters():  # ISC's initialisation: Xavier on the matrices
            if weight.dim() == 2:
                nn.init.xavier_uniform_(weight)

    def features(self, x):
        """x (N, C, T, V, M) -> f(X) (N, 2 * hidden), in self.stepping."""
        N, C, T, V, M = x.shape
        if M < PERSONS:  # a one-person input: the second person's slot is empty, as in the 2-person layout
            x = torch.cat([x, x.new_zeros(N, C, T, V, PERSONS - M)], dim=4)
        u = x.permute(0, 2, 3, 1, 4).reshape(N, T, V * C * PERSONS)  # (N, T, 150): u_t, ISC's order
        gru = self.encoder.gru
        # Reconstruction: train.py's default is the whole-sequence pass, a bidirectional GRU as torch defines it;
        # alternative: --gru_stepping frame, ISC's, which its and CMD's released weights need.
        if self.stepping == "sequence":
            _, h_n = gru(u)  # h_n (layers * 2, N, hidden): the last state of each layer and direction
            return torch.cat([h_n[-2], h_n[-1]], dim=1)  # [h_T^fwd ; h_1^bwd] of the last layer, (N, 2 * hidden)
        h = None  # "frame": (layers * 2, N, hidden) carried from frame to frame
        for t in range(T):
            out, h = gru(u[:, t:t + 1], h)  # out (N, 1, 2 * hidden): the last layer after frame t
        return out[:, 0]  # [h_T^fwd ; h_T^bwd] of the last layer

    def forward(self, x):
        feature = self.features(x)  # (N, 2 * hidden)
        return feature if self.fc is None else self.fc(feature)

    @classmethod
    def from_state(cls, state, source="the checkpoint", size="auto", stepping="frame"):
        """f from a BIGRU state dict (ISC's names; already unwrapped: utils.checkpoints.encoder_part), loaded
        strictly: the width is read from the GRU's recurrent weight, and a classifier `fc` is dropped after its
        strict load. The stepping is not in the weights: ISC's by default (encoders.build_encoder reads a run's)."""
        if size == "auto":  # the hidden size: the recurrent weight is (3 * hidden, hidden)
            size = size_by_width(state, "encoder.gru.weight_hh_l0", 1, SIZES, "GRU", source)
        return feature_extractor(lambda num_class: cls(num_class, size, stepping), state, source, "fc.weight", "fc")
