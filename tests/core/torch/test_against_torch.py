"""service.core.torch (generator, init, modules) against a real PyTorch (CPU build, test-only dependency).

Install it with ``.venv/bin/pip install torch==2.13.0`` (a local file); without it
this module is skipped with that reason, never passed silently.  Each test seeds
torch and the replay with the same seed, builds the same modules in the same
order and compares every parameter bit for bit where the replay says
``exact=True``, and within the documented bound where it says ``exact=False``.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch",
    reason="torch (CPU build, test-only) is not installed: `.venv/bin/pip install torch==2.13.0` to run the "
    "PyTorch-exact stream tests",
)
nn = torch.nn

from service.core.torch import init, modules  # noqa: E402
from service.core.torch.generator import DEFAULT_NORMAL_ULP_BOUND, TorchCPUGenerator  # noqa: E402
from service.core.torch.init import ORTHOGONAL_BOUND_FACTOR  # noqa: E402
from service.core.torch.init import fans as torch_fans  # noqa: E402

#: The module constructors by the short names the architectures below use.
KINDS = {
    "dense": modules.linear,
    **{f"conv{d}d": (lambda d: lambda gen, **kw: modules.conv(gen, d, False, **kw))(d) for d in (1, 2, 3)},
    **{f"conv_transpose{d}d": (lambda d: lambda gen, **kw: modules.conv(gen, d, True, **kw))(d) for d in (1, 2, 3)},
    "embedding": modules.embedding,
    **{k: (lambda k: lambda gen, **kw: modules.recurrent(gen, k, **kw))(k) for k in ("rnn", "lstm", "gru")},
    "batchnorm": modules.batchnorm,
    "layernorm": modules.layernorm,
    "attention": modules.multihead_attention,
}


def construct_module(gen, kind, **kwargs):
    return KINDS[kind](gen, **kwargs)

SEEDS = [0, 1234, 2**32 + 17]  # 2**32 + 17 replays seed 17: torch keeps the low 32 bits


def _capability() -> str:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip(f"replay verified for x86-64 torch kernels only, not {platform.machine()}")
    cap = torch.backends.cpu.get_cpu_capability()
    if cap in ("AVX2", "AVX512"):
        return "avx2"
    if cap == "DEFAULT":
        return "default"
    pytest.skip(f"unverified torch CPU capability {cap}")


CAP = None


@pytest.fixture(scope="module", autouse=True)
def _torch_setup():
    global CAP
    CAP = _capability()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def assert_same(ours: np.ndarray, exact: bool, theirs, what: str = "", *, bound=None):
    t = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.dtype == np.float32, what
    assert ours.shape == t.shape, f"{what}: shape {ours.shape} != {t.shape}"
    if exact:
        assert torch.equal(torch.from_numpy(np.ascontiguousarray(ours)), torch.from_numpy(t)), what
        assert np.array_equal(_bits(ours), _bits(t)), f"{what}: {np.count_nonzero(ours != t)} values differ"
    else:
        assert bound is not None, f"{what}: not exact and no bound given"
        diff = np.abs(ours.astype(np.float64) - t.astype(np.float64))
        assert np.all(diff <= bound), f"{what}: max diff {diff.max()} > bound"


def assert_normal(ours, exact, theirs, what, std):
    """normal_-based values: bit-exact, or (DEFAULT capability) within the stated ulp bound."""
    if exact:
        assert_same(ours, True, theirs, what)
    else:
        assert CAP == "default", f"{what}: normal_ must be exact on {CAP}"
        t = theirs.detach().numpy()
        scale = np.maximum(np.abs(t), np.float32(abs(std)))
        assert_same(ours, False, theirs, what, bound=DEFAULT_NORMAL_ULP_BOUND * np.spacing(scale).astype(np.float64))


def check_modules(seed, modules_and_specs):
    torch.manual_seed(seed)
    built = [make() for make, _, _ in modules_and_specs]
    gen = TorchCPUGenerator(seed, capability=CAP)
    for module, (_, kind, kwargs) in zip(built, modules_and_specs):
        ours = construct_module(gen, kind, **kwargs)
        theirs = list(module.named_parameters())
        assert [n for n, _, _ in ours] == [n for n, _ in theirs], kind
        for (name, arr, exact), (_, p) in zip(ours, theirs):
            if exact:
                assert_same(arr, True, p, f"seed {seed} {kind}.{name}")
            else:
                assert_normal(arr, exact, p, f"seed {seed} {kind}.{name}", 1.0)
    # the streams are still in step after the whole model
    assert_same(gen.uniform_((5,), 0, 1), True, torch.empty(5).uniform_(), "stream after construction")
    return gen


ARCHITECTURES = {
    "mlp": [
        (lambda: nn.Linear(100, 50), "dense", dict(in_features=100, out_features=50)),
        (lambda: nn.Linear(50, 10), "dense", dict(in_features=50, out_features=10)),
    ],
    "cnn_groups": [
        (lambda: nn.Conv2d(4, 8, 3, groups=2), "conv2d", dict(in_channels=4, out_channels=8, kernel_size=3, groups=2)),
        (lambda: nn.BatchNorm2d(8), "batchnorm", dict(num_features=8)),
        (lambda: nn.ConvTranspose2d(8, 4, 3, groups=2), "conv_transpose2d",
         dict(in_channels=8, out_channels=4, kernel_size=3, groups=2)),
        (lambda: nn.Conv1d(3, 6, 5, bias=False), "conv1d", dict(in_channels=3, out_channels=6, kernel_size=5, bias=False)),
        (lambda: nn.Conv3d(2, 4, (1, 2, 3)), "conv3d", dict(in_channels=2, out_channels=4, kernel_size=(1, 2, 3))),
        (lambda: nn.ConvTranspose1d(6, 3, 4, groups=3), "conv_transpose1d",
         dict(in_channels=6, out_channels=3, kernel_size=4, groups=3)),
        (lambda: nn.ConvTranspose3d(2, 2, 2), "conv_transpose3d", dict(in_channels=2, out_channels=2, kernel_size=2)),
    ],
    "lstm_linear": [
        (lambda: nn.LSTM(32, 64), "lstm", dict(input_size=32, hidden_size=64)),
        (lambda: nn.Linear(64, 10), "dense", dict(in_features=64, out_features=10)),
    ],
    "gru_rnn": [
        (lambda: nn.GRU(12, 20), "gru", dict(input_size=12, hidden_size=20)),
        (lambda: nn.RNN(7, 9, bias=False), "rnn", dict(input_size=7, hidden_size=9, bias=False)),
        (lambda: nn.LSTM(5, 8, num_layers=2, bidirectional=True, proj_size=3), "lstm",
         dict(input_size=5, hidden_size=8, num_layers=2, bidirectional=True, proj_size=3)),
    ],
    "embedding_layernorm_linear": [
        (lambda: nn.Embedding(100, 16), "embedding", dict(num_embeddings=100, embedding_dim=16)),
        (lambda: nn.LayerNorm(16), "layernorm", dict(normalized_shape=16)),
        (lambda: nn.Linear(16, 4), "dense", dict(in_features=16, out_features=4)),
        (lambda: nn.Embedding(3, 5, padding_idx=1), "embedding", dict(num_embeddings=3, embedding_dim=5, padding_idx=1)),
    ],
    "attention": [
        (lambda: nn.MultiheadAttention(32, 4), "attention", dict(embed_dim=32, num_heads=4)),
        (lambda: nn.MultiheadAttention(8, 2, bias=False, add_bias_kv=True, kdim=5, vdim=6), "attention",
         dict(embed_dim=8, num_heads=2, bias=False, add_bias_kv=True, kdim=5, vdim=6)),
        (lambda: nn.MultiheadAttention(24, 3, add_bias_kv=True), "attention",
         dict(embed_dim=24, num_heads=3, add_bias_kv=True)),
    ],
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_module_construction_matches_pytorch(arch, seed):
    check_modules(seed, ARCHITECTURES[arch])


def test_seed_low_32_bits_and_negative_seeds():
    for seed in (-5, 2**64 - 5, 7 + 3 * 2**32):
        torch.manual_seed(seed)
        t = torch.empty(40).uniform_(-1, 1)
        assert_same(TorchCPUGenerator(seed, capability=CAP).uniform_((40,), -1, 1), True, t, f"seed {seed}")
    torch.manual_seed(7)
    assert_same(TorchCPUGenerator(7 + 2**32, capability=CAP).uniform_((3,), 0, 1), True, torch.empty(3).uniform_(), "wrap")


# sizes below 16, exactly 16, a multiple of 16, and not a multiple of 16 (the redrawn tail)
SHAPES_2D = [(3, 5), (4, 4), (8, 16), (7, 9), (6, 4, 3, 3), (1, 17)]
SHAPES_1D = [(1,), (15,), (16,), (17,), (48,)]


def _apply(fn_name, shape, *args, **kwargs):
    t = torch.empty(shape)
    getattr(nn.init, fn_name)(t, *args, **kwargs)
    return t


@pytest.mark.parametrize("seed", SEEDS)
def test_init_functions_after_construction(seed):
    gen = check_modules(seed, ARCHITECTURES["mlp"])
    for shape in SHAPES_1D + SHAPES_2D:
        assert_same(gen.uniform_(shape, -0.3, 0.7), True, _apply("uniform_", shape, -0.3, 0.7), f"uniform_ {shape}")
        ours, exact = gen.normal_(shape, 0.25, 1.5)
        assert_normal(ours, exact, _apply("normal_", shape, 0.25, 1.5), f"normal_ {shape}", 1.5)
        assert_same(init.constant_(gen, shape, 0.1), True, _apply("constant_", shape, 0.1), "constant_")
        assert_same(init.zeros_(gen, shape), True, _apply("zeros_", shape), "zeros_")
        assert_same(init.ones_(gen, shape), True, _apply("ones_", shape), "ones_")
        for args in [(), (0.0, 0.02), (0.0, 1.0, -1.0, 1.0), (0.0, 1.0, -0.2, 0.3), (1.0, 2.0, 0.5, 5.0), (0.0, 1.0, 1.5, 2.5)]:
            ours, exact = gen.trunc_normal_(shape, *args)
            theirs = _apply("trunc_normal_", shape, *args)
            std = args[1] if args else 1.0
            assert_normal(ours, exact, theirs, f"trunc_normal_{args} {shape}", std)
    for shape in SHAPES_2D:
        fan_in, fan_out = torch_fans(shape)
        assert (fan_in, fan_out) == nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert_same(init.xavier_uniform_(gen, shape), True, _apply("xavier_uniform_", shape), f"xavier_uniform_ {shape}")
        assert_same(init.xavier_uniform_(gen, shape, gain=2.5), True, _apply("xavier_uniform_", shape, gain=2.5), "xu gain")
        ours, exact = init.xavier_normal_(gen, shape, gain=0.5)
        assert_normal(ours, exact, _apply("xavier_normal_", shape, gain=0.5), f"xavier_normal_ {shape}", 0.5)
        assert_same(init.kaiming_uniform_(gen, shape), True, _apply("kaiming_uniform_", shape), f"kaiming_uniform_ {shape}")
        assert_same(init.kaiming_uniform_(gen, shape, a=math.sqrt(5), mode="fan_out"), True,
                    _apply("kaiming_uniform_", shape, a=math.sqrt(5), mode="fan_out"), "ku a=sqrt5 fan_out")
        assert_same(init.kaiming_uniform_(gen, shape, nonlinearity="relu"), True,
                    _apply("kaiming_uniform_", shape, nonlinearity="relu"), "ku relu")
        ours, exact = init.kaiming_normal_(gen, shape, mode="fan_out", nonlinearity="relu")
        assert_normal(ours, exact, _apply("kaiming_normal_", shape, mode="fan_out", nonlinearity="relu"),
                      f"kaiming_normal_ {shape}", 1.0)

        ours, exact = init.orthogonal_(gen, shape, gain=1.5)
        n = max(shape[0], int(np.prod(shape)) // shape[0])
        assert exact is False
        assert_same(ours, False, _apply("orthogonal_", shape, gain=1.5), f"orthogonal_ {shape}",
                    bound=ORTHOGONAL_BOUND_FACTOR * n * 2.0**-24 * 1.5)
        if len(shape) == 2:
            ours, exact = init.sparse_(gen, shape, 0.3, std=0.5)
            assert_normal(ours, exact, _apply("sparse_", shape, 0.3, std=0.5), f"sparse_ {shape}", 0.5)
            assert_same(init.eye_(gen, shape), True, _apply("eye_", shape), "eye_")
        else:
            assert_same(init.dirac_(gen, shape), True, _apply("dirac_", shape), "dirac_")
            assert_same(init.dirac_(gen, shape, groups=2), True, _apply("dirac_", shape, groups=2), "dirac_ groups")
    # zero-element tensors draw nothing; everything above kept the streams in step
    assert init.kaiming_uniform_(gen, (0, 3)).shape == (0, 3)
    assert_same(gen.uniform_((9,), 0, 1), True, torch.empty(9).uniform_(), "stream after init functions")


def test_uniform_clamps_a_value_rounded_up_to_the_upper_bound():
    # draw #12675698 of seed 2 has low 24 bits 0xFFFFFF: on AVX2 kernels 0.1 + x * 2.6 rounds
    # (fused) to 2.7 in float32, and torch returns `from` instead
    n = 12675698
    gen = TorchCPUGenerator(2, capability=CAP)
    gen.discard(n)
    ours = gen.uniform_((1,), 0.1, 2.7)
    torch.manual_seed(2)
    theirs = torch.empty(n + 1).uniform_(0.1, 2.7)[-1:]
    assert_same(ours, True, theirs, "clamped draw")
    if CAP == "avx2":
        assert ours[0] == np.float32(0.1)


def test_large_normal_with_tail():
    seed = 99
    torch.manual_seed(seed)
    t = torch.empty(1000, 1003).normal_(-0.5, 0.05)
    ours, exact = TorchCPUGenerator(seed, capability=CAP).normal_((1000, 1003), -0.5, 0.05)
    assert_normal(ours, exact, t, "normal_ 1000x1003", 0.05)


def test_other_capability_in_a_subprocess():
    """Replay the kernels of the capability this process does not use (ATEN_CPU_CAPABILITY)."""
    other = {"avx2": "default", "default": "avx2"}[CAP]
    env = dict(os.environ, ATEN_CPU_CAPABILITY=other)
    code = textwrap.dedent(f"""
        import numpy as np, torch
        from service.core.torch.generator import TorchCPUGenerator, DEFAULT_NORMAL_ULP_BOUND
        cap = torch.backends.cpu.get_cpu_capability()
        if {other!r} == "avx2" and cap not in ("AVX2", "AVX512"):
            print("SKIP", cap); raise SystemExit(0)
        torch.manual_seed(3)
        g = TorchCPUGenerator(3, capability={other!r})
        for n in (7, 16, 1000, 100003):
            u = g.uniform_((n,), -0.21, 0.4); tu = torch.empty(n).uniform_(-0.21, 0.4).numpy()
            assert np.array_equal(u.view(np.uint32), tu.view(np.uint32)), ("uniform", n)
            v, exact = g.normal_((n,), 0.3, 2.0); tv = torch.empty(n).normal_(0.3, 2.0).numpy()
            if exact:
                assert np.array_equal(v.view(np.uint32), tv.view(np.uint32)), ("normal", n)
            else:
                scale = np.maximum(np.abs(tv), np.float32(2.0))
                assert np.all(np.abs(v.astype(float) - tv) <= DEFAULT_NORMAL_ULP_BOUND * np.spacing(scale)), n
        print("OK", cap)
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if out.stdout.startswith("SKIP"):
        pytest.skip(f"this CPU cannot run the {other} kernels ({out.stdout.strip()})")
    assert out.stdout.startswith("OK")


def test_engine_module_does_not_import_torch():
    code = "import sys, service.core.torch.replay; print('torch' in sys.modules)"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
