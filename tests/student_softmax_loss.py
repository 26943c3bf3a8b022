"""Hand-written backward passes of softmax and cross-entropy, right and with the classic
mistakes, for ``symbackprop check-impl`` (README examples and tests)."""

import numpy as np


def _softmax(x, dim=1):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def softmax_backward(x, grad_out, dim=1):
    s = _softmax(x, dim)
    return s * (grad_out - (grad_out * s).sum(axis=dim, keepdims=True))


def softmax_backward_diagonal(x, grad_out, dim=1):
    s = _softmax(x, dim)
    return grad_out * s * (1 - s)


def cross_entropy_backward(x, target, weight, grad_out, ignore_index=-100):
    counted = target != ignore_index
    onehot = np.zeros_like(x)
    np.put_along_axis(onehot, np.expand_dims(np.where(counted, target, 0), 1), 1.0, axis=1)
    grad = (_softmax(x) - onehot) * np.expand_dims(counted, 1)
    return grad * grad_out / counted.sum()


def cross_entropy_backward_batch_mean(x, target, weight, grad_out, ignore_index=-100):
    counted = target != ignore_index
    onehot = np.zeros_like(x)
    np.put_along_axis(onehot, np.expand_dims(np.where(counted, target, 0), 1), 1.0, axis=1)
    grad = (_softmax(x) - onehot) * np.expand_dims(counted, 1)
    return grad * grad_out / target.size  # ignored samples counted too
