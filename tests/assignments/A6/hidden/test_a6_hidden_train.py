"""A6, hidden: the order of train_epoch's calls, with stand-ins that record them.

Never ships. The model, loss, optimizer and scheduler here are plain objects, so these
tests need none of the other tasks: they check what the docstring asks, batch by batch.
"""
import numpy as np
import pytest

from tinynets.training import loop

pytestmark = [pytest.mark.A6, pytest.mark.hidden]


class Log(list):
    def add(self, *event):
        self.append(event)


class Model:
    def __init__(self, log, K=3):
        self.log, self.K, self.training, self.seen = log, K, False, 0

    def train(self, mode=True):
        self.training = mode
        self.log.add("train", mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, x):
        self.log.add("forward", len(x), self.training)
        self.seen += 1
        logits = np.zeros((len(x), self.K))
        logits[np.arange(len(x)), (np.arange(len(x)) + self.seen) % self.K] = 1.0   # known argmax
        self.logits = logits
        return logits

    def backward(self, d):
        self.log.add("backward", d)


class Loss:
    def __init__(self, log, values):
        self.log, self.values, self.i = log, list(values), 0

    def __call__(self, logits, y):
        self.log.add("loss", len(y))
        value = self.values[self.i]
        self.i += 1
        return np.float64(value)

    def backward(self, dout=1.0):
        token = f"dlogits {self.i}"
        self.log.add("loss.backward")
        return token


class Opt:
    def __init__(self, log):
        self.log = log

    def step(self):
        self.log.add("step")

    def zero_grad(self):
        self.log.add("zero_grad")


class Sched:
    def __init__(self, log):
        self.log = log

    def step(self):
        self.log.add("sched")


def _batches(sizes, K=3):
    rng = np.random.default_rng(64)
    return [(np.zeros((n, 1, 2, 2), np.float32), rng.integers(0, K, n)) for n in sizes]


def test_train_loop_order_of_calls(no_trainer):
    """train() first; per batch forward, loss, model.backward(loss.backward()), step,
    scheduler step, and zero_grad between one step and the next backward, never between
    a backward and its step."""
    log = Log()
    sizes = (4, 2, 5, 3)
    loop.train_epoch(Model(log), _batches(sizes), Loss(log, [1.0, 2.0, 3.0, 4.0]), Opt(log),
                     Sched(log))
    names = [e[0] for e in log]
    if "train" not in names or names.index("train") > names.index("forward") or \
            any(e[0] == "train" and e[1] is False for e in log):
        raise AssertionError(f"train_epoch should call model.train() before the first batch; calls: {names}")
    if any(e[0] == "forward" and not e[2] for e in log):
        raise AssertionError("every forward of train_epoch should run in train mode")
    for what in ("forward", "loss", "backward", "step", "sched"):
        if names.count(what) != len(sizes):
            raise AssertionError(f"{len(sizes)} batches: {what} should happen once per batch, it "
                                 f"happened {names.count(what)} times; calls: {names}")
    backs = [i for i, n in enumerate(names) if n == "backward"]
    steps = [i for i, n in enumerate(names) if n == "step"]
    scheds = [i for i, n in enumerate(names) if n == "sched"]
    fwds = [i for i, n in enumerate(names) if n == "forward"]
    for b in range(len(sizes)):
        if not fwds[b] < backs[b] < steps[b] < scheds[b]:
            raise AssertionError(f"batch {b}: expected forward, backward, optimizer.step, "
                                 f"scheduler.step in that order; calls: {names}")
        if "zero_grad" in names[backs[b]:steps[b]]:
            raise AssertionError(f"batch {b}: zero_grad between backward and step throws the "
                                 f"gradients away; calls: {names}")
        if b + 1 < len(sizes) and "zero_grad" not in names[steps[b]:backs[b + 1]]:
            raise AssertionError(f"batch {b + 1}: its backward would add to batch {b}'s "
                                 f"gradients; call optimizer.zero_grad() in between; calls: {names}")
    for b, i in enumerate(backs):
        if log[i][1] != f"dlogits {b + 1}":
            raise AssertionError(f"batch {b}: model.backward should get loss_fn.backward()'s "
                                 f"result for this batch, got {log[i][1]!r}")


def test_train_loop_mean_loss_and_accuracy(no_trainer):
    """Batches of different sizes: the loss weighted by size, the accuracy over images,
    both Python floats; no scheduler given."""
    log = Log()
    sizes, values = (4, 1, 6), [2.0, 5.0, 0.5]
    batches = _batches(sizes)
    model = Model(log)
    correct, seen = 0, 0
    for b, (x, y) in enumerate(batches):           # the argmax the stand-in model will give
        pred = (np.arange(len(x)) + b + 1) % 3
        correct += int((pred == y).sum())
        seen += len(y)
    loss, acc = loop.train_epoch(model, iter(batches), Loss(log, values), Opt(log), None)
    want = sum(n * v for n, v in zip(sizes, values)) / sum(sizes)
    if not (isinstance(loss, float) and isinstance(acc, float)):
        raise AssertionError(f"train_epoch should return two Python floats, got "
                             f"{type(loss).__name__} and {type(acc).__name__}")
    if not abs(loss - want) < 1e-12:
        raise AssertionError(f"batch losses {values} of sizes {sizes}: the mean loss weighted by "
                             f"batch size is {want:.6f}, train_epoch returned {loss:.6f}")
    if not abs(acc - correct / seen) < 1e-12:
        raise AssertionError(f"accuracy over the epoch's {seen} images should be {correct / seen:.4f}, "
                             f"got {acc:.4f}")
