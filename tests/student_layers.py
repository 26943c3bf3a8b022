"""Hand-written backward passes of activations, flatten and the fully connected layer, as
a student writes them: right ones and wrong ones.

Activations and flatten follow ``backward(x, grad_out) -> grad_x``; the fully connected
layer ``backward(x, w, b, grad_z) -> (grad_x, grad_w, grad_b)`` with samples as rows
(``z = x @ w.T + b``).  Every wrong one makes exactly one classic mistake, marked
``# MISTAKE``; tests/test_check_impl_layers.py checks that ``check_impl`` names it.
"""

import numpy as np


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# -- activations -------------------------------------------------------------------------
def relu_backward(x, grad_out):
    """Right: f'(x) = 1 where x > 0, else 0 (0 at 0, as the notes define it)."""
    return grad_out * (x > 0)


def relu_backward_at_zero(x, grad_out):
    return grad_out * (x >= 0)  # MISTAKE: f'(0) = 1


def leaky_relu_backward(x, grad_out, negative_slope=0.01):
    """Right: 1 where x > 0, else the slope (the slope at 0)."""
    return grad_out * np.where(x > 0, 1.0, negative_slope)


def leaky_relu_backward_at_zero(x, grad_out, negative_slope=0.01):
    return grad_out * np.where(x >= 0, 1.0, negative_slope)  # MISTAKE: f'(0) = 1


def sigmoid_backward(x, grad_out):
    """Right: s(x) (1 - s(x))."""
    a = _sigmoid(x)
    return grad_out * a * (1 - a)


def sigmoid_backward_at_output(x, grad_out):
    a = _sigmoid(x)
    s = _sigmoid(a)  # MISTAKE: f' evaluated at the output a instead of the input x
    return grad_out * s * (1 - s)


def sigmoid_backward_output_formula_on_input(x, grad_out):
    return grad_out * x * (1 - x)  # MISTAKE: a (1 - a) with the input x in place of a


def tanh_backward(x, grad_out):
    """Right: 1 - tanh(x)^2."""
    return grad_out * (1 - np.tanh(x) ** 2)


def tanh_backward_at_output(x, grad_out):
    a = np.tanh(x)
    return grad_out * (1 - np.tanh(a) ** 2)  # MISTAKE: f'(a) instead of f'(x)


def tanh_backward_output_formula_on_input(x, grad_out):
    return grad_out * (1 - x ** 2)  # MISTAKE: 1 - a^2 with the input x in place of a


# -- flatten -----------------------------------------------------------------------------
def flatten_backward(x, grad_out):
    """Right: the upstream gradient reshaped to the input's shape, row-major."""
    return grad_out.reshape(x.shape)


def flatten_backward_column_major(x, grad_out):
    return grad_out.reshape(x.shape, order="F")  # MISTAKE: not row-major


# -- fully connected -----------------------------------------------------------------------
def linear_backward(x, w, b, grad_z):
    """Right: grad_x = grad_z w, grad_w = grad_z^T x, grad_b summed over the batch."""
    grad_b = None if b is None else grad_z.sum(axis=0)
    return grad_z @ w, grad_z.T @ x, grad_b


def linear_backward_w_not_transposed(x, w, b, grad_z):
    return grad_z @ w.T, grad_z.T @ x, grad_z.sum(axis=0)  # MISTAKE: W instead of W^T


def linear_backward_grad_w_not_transposed(x, w, b, grad_z):
    return grad_z @ w, x.T @ grad_z, grad_z.sum(axis=0)  # MISTAKE: x^T g instead of g^T x


def linear_backward_bias_one_sample(x, w, b, grad_z):
    return grad_z @ w, grad_z.T @ x, grad_z[0]  # MISTAKE: bias not summed over the batch


def linear_backward_bias_mean(x, w, b, grad_z):
    return grad_z @ w, grad_z.T @ x, grad_z.mean(axis=0)  # MISTAKE: the mean, not the sum
