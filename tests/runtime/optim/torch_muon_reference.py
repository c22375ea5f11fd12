"""torch.optim.Muon on the inputs muon_test.cpp writes, for it to compare Albion's Muon with.

Usage: torch_muon_reference.py DIR ROWS COLS STEPS LR WEIGHT_DECAY MOMENTUM
Reads DIR/w0.bin (fp32, ROWS x COLS) and DIR/g1.bin .. gSTEPS.bin, takes STEPS steps at LR x step
(the test's schedule), and writes DIR/w_torch.bin.
"""
import sys

import numpy as np
import torch


def read(path, rows, cols):
    return torch.from_numpy(np.fromfile(path, dtype=np.float32).reshape(rows, cols).copy())


def main():
    directory = sys.argv[1]
    rows, cols, steps = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    lr, weight_decay, momentum = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
    weight = torch.nn.Parameter(read(f"{directory}/w0.bin", rows, cols))
    optimizer = torch.optim.Muon([weight], lr=lr, weight_decay=weight_decay, momentum=momentum,
                                 nesterov=True, adjust_lr_fn="match_rms_adamw")
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr * step
        weight.grad = read(f"{directory}/g{step}.bin", rows, cols)
        optimizer.step()
    weight.detach().numpy().astype(np.float32).tofile(f"{directory}/w_torch.bin")


if __name__ == "__main__":
    main()
