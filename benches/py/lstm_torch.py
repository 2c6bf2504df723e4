"""The `kf-bench lstm` case through PyTorch: the same data, the same network.

Reads DIR/close.f64 and DIR/volume.f64 (ROWS x ASSETS, row-major, little-endian
f64), the bars `kf-bench lstm` trains on. Builds the windows as the `lstm` node does
with `relative = true`: each window of WINDOW rows divided by its last row, per
feature, minus 1; the target is the close HORIZON rows after the window's last row
over that row's close, minus 1; inputs and target z-scored with the training
windows' means and deviations. Trains `torch.nn.LSTM(2, HIDDEN)` and a linear head
on the last state, in float64 as ours does: Adam (lr 0.002), minibatches of 256
shuffled each epoch, gradient clipping at norm 1, and after each epoch the mean
squared error over the training windows (as our early stopping computes it).

Then the streaming step: one new window per asset (40, then 500 assets) through
the network under `torch.no_grad()` on one thread, 400 steps.

Prints one line: `epoch_s_1thread epoch_s_2threads p50_40 p99_40 p50_500 p99_500`
(seconds per epoch; milliseconds per step). Called by `kf-bench lstm`; needs
`pip install torch numpy`.
"""

import sys
import time

import numpy as np
import torch

d, rows, assets, window, hidden, horizon, epochs = sys.argv[1:8]
rows, assets, window, hidden, horizon, epochs = map(
    int, (rows, assets, window, hidden, horizon, epochs)
)
close = np.fromfile(f"{d}/close.f64", dtype="<f8").reshape(rows, assets)
volume = np.fromfile(f"{d}/volume.f64", dtype="<f8").reshape(rows, assets)
feats = np.stack([close, volume], axis=-1)  # rows x assets x 2

xs, ys = [], []
for last in range(window - 1, rows - horizon):
    w = feats[last - window + 1 : last + 1]  # window x assets x 2
    xs.append(w / w[-1] - 1.0)
    ys.append(close[last + horizon] / close[last] - 1.0)
x = np.concatenate([np.transpose(v, (1, 0, 2)) for v in xs])  # n x window x 2
y = np.concatenate(ys)
x = (x - x.reshape(-1, 2).mean(0)) / x.reshape(-1, 2).std(0)
y = (y - y.mean()) / y.std()
X = torch.from_numpy(x)
Y = torch.from_numpy(y)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.LSTM(2, hidden, batch_first=True, dtype=torch.float64)
        self.head = torch.nn.Linear(hidden, 1, dtype=torch.float64)

    def forward(self, v):
        out, _ = self.rnn(v)
        return self.head(out[:, -1]).squeeze(1)


def train(threads):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=0.002)
    n = len(Y)
    t = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n)
        for i in range(0, n, 256):
            idx = order[i : i + 256]
            opt.zero_grad()
            loss = ((net(X[idx]) - Y[idx]) ** 2).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
        with torch.no_grad():
            sum(((net(X[i : i + 512]) - Y[i : i + 512]) ** 2).sum() for i in range(0, n, 512))
    return (time.perf_counter() - t) / epochs, net


one, net = train(1)
two, _ = train(2)
torch.set_num_threads(1)
lat = []
rng = np.random.default_rng(2)
for b in (40, 500):
    times = []
    with torch.no_grad():
        for _ in range(400):
            v = torch.from_numpy(rng.standard_normal((b, window, 2)))
            t = time.perf_counter()
            net(v)
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    lat += [times[len(times) // 2], times[round((len(times) - 1) * 0.99)]]
print(" ".join(f"{v:.6f}" for v in [one, two] + lat))
