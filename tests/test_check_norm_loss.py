r"""``check`` on the normalisations and the losses: the names students write (mu, sigma,
\hat{x}, gamma, beta, epsilon, m; p, y, N, n), right formulas judged right, wrong ones
judged wrong with the classic mistake named."""

import pytest

from symbackprop import check_formula
from symbackprop.check import formula_rules
from symbackprop.cli import main
from symbackprop.kinds import (
    BatchNorm1d,
    BatchNorm2d,
    CrossEntropyLoss,
    InstanceNorm2d,
    LayerNorm,
    MSELoss,
)

BN_DX = (r"\frac{\partial L}{\partial x_{ij}} = \frac{\gamma_j}{m \sqrt{\sigma_j^2+\epsilon}}"
         r" \left(m g_{ij} - \sum_k g_{kj} - \hat{x}_{ij} \sum_k g_{kj} \hat{x}_{kj}\right)")


@pytest.fixture
def short_simplify(monkeypatch):
    """A wrong formula spends the whole simplify budget before the numbers decide; the
    verdict does not depend on it, so the tests of wrong formulas keep it short."""
    monkeypatch.setattr(formula_rules, "SIMPLIFY_SECONDS", 0.1)


def run(capsys, *argv):
    status = main(list(argv))
    return status, capsys.readouterr().out


def test_batchnorm1d_input_gradient_right_from_the_command_line(capsys):
    status, out = run(capsys, "check", "batchnorm1d", "--num-features", "2", "--batch", "3",
                      BN_DX)
    assert status == 0, out
    assert "correct: all 6 elements" in out


@pytest.mark.parametrize("formula", [
    r"dL/dgamma_j = \sum_i g_{ij} xhat_{ij}",
    r"\frac{\partial L}{\partial \gamma_j} = \sum_i g_{ij} \frac{x_{ij} - \mu_j}"
    r"{\sqrt{\sigma_j^2 + eps}}",
    r"dL/d\beta_j = \sum_i g_{ij}",
    # derive's own closed form: sigma = sqrt(sigma^2 + eps), as its printout defines it
    r"dL/dx_{ij} = \frac{\gamma_j}{m \sigma_j} (m g_{ij} - \sum_k g_{kj}"
    r" - \hat{x}_{ij} \sum_k g_{kj} \hat{x}_{kj})",
    # its computational graph's names; sigma^2 with the power before the index
    r"dL/dx_{ij} = \gamma_j istd_j (g_{ij} - \frac{1}{m} \sum_k g_{kj})"
    r" - \frac{\gamma_j xc_{ij}}{m (\sigma^2_j + \epsilon)^{3/2}} \sum_k g_{kj} xc_{kj}",
    # the plain-text spelling, the variance under its own name
    r"dL/dx_{ij} = gamma_j / (m sqrt(var_j + eps)) (m g_{ij} - \sum_k g_{kj}"
    r" - xhat_{ij} \sum_k g_{kj} xhat_{kj})",
])
def test_batchnorm1d_other_right_formulas(formula):
    assert check_formula(BatchNorm1d(2), None, formula, batch=3).ok


@pytest.mark.parametrize("formula, mistake", [
    (BN_DX.replace(r"\gamma_j", "1"), "gamma missing"),
    (BN_DX.replace(r"- \sum_k g_{kj} ", ""), "the mean's path dropped"),
    (BN_DX.replace(r" - \hat{x}_{ij} \sum_k g_{kj} \hat{x}_{kj}", ""),
     "the variance's path dropped"),
    (r"dL/dx_{ij} = \frac{\gamma_j}{\sqrt{\sigma_j^2+\epsilon}} g_{ij}",
     "mean and variance treated as constants"),
    # normalised with the unbiased variance s^2 = m sigma^2 / (m - 1), differentiated so
    (r"dL/dx_{ij} = \frac{\gamma_j}{\sqrt{s_j}} (g_{ij} - \frac{1}{m} \sum_k g_{kj})"
     r" - \frac{\gamma_j (x_{ij} - \mu_j)}{(m-1) s_j \sqrt{s_j}} \sum_k g_{kj} (x_{kj} - \mu_j)"
     .replace("s_j", r"(\frac{m}{m-1} \sigma_j^2 + \epsilon)"), "the unbiased variance"),
])
def test_batchnorm1d_wrong_formulas_name_the_mistake(formula, mistake, short_simplify):
    result = check_formula(BatchNorm1d(2), None, formula, batch=3)
    assert not result.ok
    assert f"mistake: {mistake}" in result.report()


def test_batchnorm1d_wrong_from_the_command_line(capsys, short_simplify):
    status, out = run(capsys, "check", "batchnorm1d", "--batch", "3",
                      BN_DX.replace(r"\gamma_j", "1"))
    assert status == 1
    assert "mistake: gamma missing" in out


BN2D_DX = (r"dL/dx_{nchw} = \frac{\gamma_c}{m \sqrt{\sigma_c^2 + \epsilon}} (m g_{nchw}"
           r" - \sum_{k,p,q} g_{kcpq} - \hat{x}_{nchw} \sum_{k,p,q} g_{kcpq} \hat{x}_{kcpq})")


def test_batchnorm2d_right_and_wrong(short_simplify):
    layer = BatchNorm2d(1)
    assert check_formula(layer, (2, 2), BN2D_DX, batch=2).ok
    assert check_formula(layer, (2, 2), r"dL/d\beta_c = \sum_{n,h,w} g_{nchw}", batch=2).ok
    wrong = check_formula(layer, (2, 2), BN2D_DX.replace(r" - \sum_{k,p,q} g_{kcpq}", ""),
                          batch=2)
    assert not wrong.ok and "mistake: the mean's path dropped" in wrong.report()


LN_DX = (r"dL/dx_{nj} = \frac{1}{m \sqrt{\sigma_n^2 + \epsilon}} (m \gamma_j g_{nj}"
         r" - \sum_k \gamma_k g_{nk} - \hat{x}_{nj} \sum_k \gamma_k g_{nk} \hat{x}_{nk})")


def test_layernorm_right_and_wrong(short_simplify):
    layer = LayerNorm((3,))
    assert check_formula(layer, None, LN_DX, batch=2).ok
    assert check_formula(layer, None, r"dL/d\gamma_j = \sum_n g_{nj} \hat{x}_{nj}",
                         batch=2).ok
    wrong = check_formula(layer, None, LN_DX.replace(r"\gamma_j g_{nj}", "g_{nj}")
                          .replace(r"\gamma_k", ""), batch=2)
    assert not wrong.ok and "mistake: gamma missing" in wrong.report()


CE_DX = r"\frac{\partial L}{\partial x_{nc}} = \frac{p_{nc} - y_{nc}}{N}"


def test_cross_entropy_right_from_the_command_line(capsys):
    status, out = run(capsys, "check", "crossentropyloss", "--classes", "2,0", "--batch", "2",
                      CE_DX)
    assert status == 0, out
    assert "correct: all 6 elements" in out


@pytest.mark.parametrize("formula", [
    "dL/dx = (p - y) / N", r"dL/dx_{nc} = g (p_{nc} - y_{nc}) / N",
])
def test_cross_entropy_other_right_formulas(formula):
    assert check_formula(CrossEntropyLoss(), 3, formula, batch=2).ok


@pytest.mark.parametrize("formula, mistake", [
    (r"dL/dx_{nc} = p_{nc} - y_{nc}", "not divided by N"),
    (r"dL/dx_{nc} = -\frac{y_{nc}}{N p_{nc}}", "the softmax left out"),
    (r"dL/dx_{nc} = -y_{nc} / p_{nc}", "the softmax left out"),
    (r"dL/dx_{nc} = -y_{nc}", "the softmax left out"),
])
def test_cross_entropy_wrong_formulas_name_the_mistake(formula, mistake, short_simplify):
    result = check_formula(CrossEntropyLoss(), 3, formula, batch=2)
    assert not result.ok
    assert f"mistake: {mistake}" in result.report()


def test_mse_right_and_wrong(capsys, short_simplify):
    status, out = run(capsys, "check", "mseloss", "--input", "3", "--batch", "2",
                      "dL/dx = 2 (x - y)/n")
    assert status == 0, out
    status, out = run(capsys, "check", "mseloss", "--input", "3", "--batch", "2",
                      "dL/dx_{ij} = 2 (x_{ij} - y_{ij})")
    assert status == 1 and "mistake: not divided by n" in out
    wrong = check_formula(MSELoss(), 3, r"dL/dx_{ij} = (x_{ij} - y_{ij}) / n", batch=2)
    assert not wrong.ok and "mistake: the factor 2 missing" in wrong.report()


def test_the_other_normalisations_and_eval_mode():
    instance = (r"dL/dx_{nchw} = \frac{1}{m \sqrt{\sigma_{nc}^2+\epsilon}} (m g_{nchw}"
                r" - \sum_{p,q} g_{ncpq} - \hat{x}_{nchw} \sum_{p,q} g_{ncpq} \hat{x}_{ncpq})")
    assert check_formula(InstanceNorm2d(1), (2, 2), instance).ok
    running = r"dL/dx_{ij} = \frac{\gamma_j}{\sqrt{\sigma_j^2+\epsilon}} g_{ij}"
    assert check_formula(BatchNorm1d(2, training=False), None, running, batch=2).ok


def test_cross_entropy_ignored_targets_are_not_counted():
    layer = CrossEntropyLoss(target=(1, -100, 2))
    counted = r"dL/dx_{nc} = \sum_k y_{nk} (p_{nc} - y_{nc}) / N"
    assert check_formula(layer, 3, counted, batch=3).ok
    assert not check_formula(layer, 3, r"dL/dx_{nc} = (p_{nc} - y_{nc}) / 3", batch=3).ok
