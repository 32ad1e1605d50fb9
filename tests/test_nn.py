"""nn: Module registration and walking, devices, state dicts, layers and initialization."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend, nn
from minigrad.gradcheck import gradcheck
from minigrad.nn import functional as F


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.inner = nn.Linear(3, 3)

    def forward(self, x):
        return self.inner(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(4, 3)
        self.block = Block()
        self.act = nn.ReLU()
        self.head = nn.Linear(3, 2, bias=False)
        self.offset = nn.Parameter(np.zeros(2, dtype=np.float32))

    def forward(self, x):
        return self.head(self.act(self.block(self.first(x)))) + self.offset


NET_NAMES = [
    "offset",
    "first.weight",
    "first.bias",
    "block.scale",
    "block.inner.weight",
    "block.inner.bias",
    "head.weight",
]


# ---------------------------------------------------------------- Parameter


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter([[1.0, 2.0]])
    assert isinstance(p, mg.Tensor) and p.requires_grad
    assert p.dtype == np.float32  # lists get the default float dtype
    assert nn.Parameter(np.zeros(2)).dtype == np.float64  # arrays keep theirs
    assert repr(p).startswith("Parameter(")
    with pytest.raises(ValueError, match="floating-point"):
        nn.Parameter(np.array([1, 2]))


# ---------------------------------------------------------------- registration and walking


def test_named_parameters_are_dotted_and_in_registration_order():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == NET_NAMES
    assert net.parameters() == [p for _, p in net.named_parameters()]
    assert net.num_parameters() == 2 + (12 + 3) + 3 + (9 + 3) + 6


def test_children_and_modules():
    net = Net()
    assert [type(m).__name__ for m in net.children()] == ["Linear", "Block", "ReLU", "Linear"]
    names = [n for n, _ in net.named_modules()]
    assert names == ["", "first", "block", "block.inner", "act", "head"]


def test_shared_parameter_is_listed_once():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.Tanh(), layer)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]


def test_reassigning_an_attribute_replaces_its_registration():
    net = Net()
    net.head = nn.Identity()
    net.offset = None
    names = [n for n, _ in net.named_parameters()]
    assert "offset" not in names and "head.weight" not in names
    del net.first
    assert not any(n.startswith("first") for n, _ in net.named_parameters())


def test_forgetting_super_init_gives_a_helpful_error():
    class Bad(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Bad()


def test_train_and_eval_reach_every_module():
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Dropout(0.5)))
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_repr_shows_the_tree():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Dropout(0.1)))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=8, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.1)\n"
        "  )\n"
        ")"
    )


# ---------------------------------------------------------------- devices


def test_to_moves_arrays_in_place_keeping_parameter_identity(device):
    net = Net()
    before = [(p, p.id) for p in net.parameters()]
    values = [p.numpy().copy() for p in net.parameters()]
    assert net.to(device) is net
    assert net.device == device
    for (p, pid), q, v in zip(before, net.parameters(), values):
        assert p is q and q.id == pid and q.device == device
        np.testing.assert_array_equal(q.numpy(), v)
    # Gradients computed after the move are keyed by the same ids as before it.
    x = mg.randn(5, 4, device=device)
    grads = net(x).sum().backward()
    assert set(grads.keys()) == {pid for _, pid in before}
    net.to_cpu()
    assert all(p.device == "cpu" for p in net.parameters())


def test_an_optimizer_made_before_the_move_keeps_working(device):
    from minigrad import optim

    net = Net()
    opt = optim.Adam(net.parameters(), lr=0.1)
    before = [p.numpy().copy() for p in net.parameters()]
    net.to(device)
    x = mg.randn(5, 4, device=device)
    opt.step(net(x).sum().backward())
    after = net.parameters()
    assert all(p.device == device for p in after)
    assert all(not np.array_equal(p.numpy(), b) for p, b in zip(after, before))
    opt.release()


@pytest.mark.gpu
def test_to_gpu_and_back():
    net = Net().to_gpu()
    assert all(backend.is_gpu_array(p.data) for p in net.parameters())
    assert net.to_cpu().device == "cpu"


def test_models_built_with_the_same_seed_match_across_devices(device):
    mg.manual_seed(3)
    a = nn.Linear(5, 4, device=device)
    mg.manual_seed(3)
    b = nn.Linear(5, 4)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy(), err_msg=na)


# ---------------------------------------------------------------- state dicts


def test_state_dict_is_a_host_copy_by_name(device):
    net = Net().to(device)
    state = net.state_dict()
    assert list(state) == NET_NAMES
    assert all(type(v) is np.ndarray for v in state.values())
    saved = state["first.weight"].copy()
    net.first.weight.data[...] = 0  # training on must not change a saved state
    np.testing.assert_array_equal(state["first.weight"], saved)


def test_load_state_dict_round_trip_in_place(device):
    mg.manual_seed(1)
    source = Net()
    target = Net().to(device)
    arrays = [p.data for p in target.parameters()]
    assert target.load_state_dict(source.state_dict()) is target
    for (name, p), q, array in zip(target.named_parameters(), source.parameters(), arrays):
        assert p.data is array, f"{name} was replaced, not filled in place"
        assert p.device == device
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_load_state_dict_names_missing_extra_and_misshaped_entries():
    net = Net()
    state = net.state_dict()
    del state["block.scale"]
    state["head.extra"] = np.zeros(1)
    state["first.bias"] = np.zeros(4, dtype=np.float32)
    with pytest.raises(nn.StateDictError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "missing: block.scale" in message
    assert "unexpected: head.extra" in message
    assert "first.bias" in message and "(4,)" in message and "(3,)" in message


def test_load_state_dict_non_strict_skips_missing_and_extra():
    net = Net()
    state = {"first.bias": np.full(3, 7.0), "nope": np.zeros(2)}
    net.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(net.first.bias.numpy(), np.full(3, 7.0, dtype=np.float32))
    assert net.first.bias.dtype == np.float32  # a float64 value is stored in the param's dtype


# ---------------------------------------------------------------- layers


def test_linear_shapes_init_and_forward(device):
    layer = nn.Linear(64, 10, device=device)
    assert layer.weight.shape == (10, 64) and layer.bias.shape == (10,)
    assert layer.weight.dtype == np.float32 and layer.weight.device == device
    bound = 1 / math.sqrt(64)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)  # U(-b, b): std b/sqrt(3)
    x = mg.randn(7, 64, device=device)
    np.testing.assert_allclose(layer(x).numpy(), x.numpy() @ w.T + b, rtol=1e-5, atol=1e-6)


def test_linear_options():
    layer = nn.Linear(3, 2, bias=False, dtype=np.float64)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    assert layer.weight.dtype == np.float64
    with pytest.raises(ValueError, match="positive"):
        nn.Linear(0, 2)


def test_linear_gradcheck(device):
    layer = nn.Linear(3, 2, dtype=np.float64, device=device)
    x = mg.tensor(
        np.random.default_rng(0).standard_normal((4, 3)),
        dtype="float64",
        device=device,
        requires_grad=True,
    )
    assert gradcheck(lambda x, w, b: layer(x), [x, layer.weight, layer.bias])


def test_sequential_indexing():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2]
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == layers[1:]
    with pytest.raises(IndexError, match="out of range for a Sequential of 3"):
        model[3]
    with pytest.raises(TypeError, match="Modules"):
        nn.Sequential(lambda x: x)


@pytest.mark.parametrize(
    "layer, fn",
    [
        (nn.ReLU(), F.relu),
        (nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
        (nn.Tanh(), F.tanh),
        (nn.Sigmoid(), F.sigmoid),
        (nn.GELU(), F.gelu),
        (nn.Identity(), lambda x: x),
    ],
)
def test_activation_layers_call_their_function(layer, fn, device):
    x = mg.randn(3, 4, device=device)
    np.testing.assert_array_equal(layer(x).numpy(), fn(x).numpy())


def test_dropout_layer_follows_the_mode():
    layer = nn.Dropout(0.5)
    x = mg.ones(50, 50)
    assert (layer(x).numpy() == 0).any()
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError):
        nn.Dropout(-0.1)


def test_flatten(device):
    x = mg.randn(2, 3, 4, 5, device=device)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5)


def test_flatten_of_a_scalar_gives_shape_one_as_pytorch():
    # issue 10: start % ndim divided by zero on a 0-d tensor
    x = mg.tensor(3.0, requires_grad=True)
    out = nn.Flatten(0, -1)(x)
    assert out.shape == (1,)
    assert out.sum().backward()[x].shape == ()


# ---------------------------------------------------------------- init


def _param(*shape):
    return nn.Parameter(np.zeros(shape, dtype=np.float32))


@pytest.mark.parametrize(
    "fill, expected_bound",
    [
        (lambda p: nn.init.kaiming_uniform_(p, nonlinearity="relu"), math.sqrt(6 / 200)),
        (lambda p: nn.init.kaiming_uniform_(p, a=math.sqrt(5)), 1 / math.sqrt(200)),
        (lambda p: nn.init.xavier_uniform_(p), math.sqrt(6 / (200 + 300))),
        (lambda p: nn.init.xavier_uniform_(p, gain=5 / 3), 5 / 3 * math.sqrt(6 / 500)),
    ],
)
def test_uniform_inits_fill_in_place_within_their_bound(fill, expected_bound):
    p = _param(300, 200)  # fan_in 200, fan_out 300
    array, pid = p.data, p.id
    assert fill(p) is p and p.data is array and p.id == pid and p.dtype == np.float32
    values = p.numpy()
    assert np.abs(values).max() <= expected_bound
    assert np.abs(values).max() > 0.98 * expected_bound


@pytest.mark.parametrize(
    "fill, expected_std",
    [
        (lambda p: nn.init.kaiming_normal_(p, nonlinearity="relu"), math.sqrt(2 / 200)),
        (
            lambda p: nn.init.kaiming_normal_(p, mode="fan_out", nonlinearity="relu"),
            math.sqrt(2 / 300),
        ),
        (lambda p: nn.init.xavier_normal_(p), math.sqrt(2 / 500)),
        (lambda p: nn.init.normal_(p, 0.0, 0.02), 0.02),
    ],
)
def test_normal_inits_have_the_expected_std(fill, expected_std):
    values = fill(_param(300, 200)).numpy()
    assert values.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(values.mean()) < 0.1 * expected_std


def test_init_helpers():
    assert nn.init.fan_in_and_fan_out((8, 4, 3, 3)) == (36, 72)
    assert nn.init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    np.testing.assert_array_equal(nn.init.ones_(_param(2, 2)).numpy(), np.ones((2, 2)))
    np.testing.assert_array_equal(nn.init.constant_(_param(3), 2.5).numpy(), [2.5] * 3)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.init.calculate_gain("swish")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(_param(5))
    with pytest.raises(ValueError, match="mode"):
        nn.init.kaiming_uniform_(_param(2, 2), mode="fan")


def test_init_on_the_gpu_matches_the_cpu(device):
    mg.manual_seed(5)
    a = nn.Parameter(backend.to_device(np.zeros((4, 3), dtype=np.float32), device))
    nn.init.xavier_normal_(a)
    mg.manual_seed(5)
    b = nn.init.xavier_normal_(_param(4, 3))
    assert a.device == device
    np.testing.assert_array_equal(a.numpy(), b.numpy())


# ---------------------------------------------------------------- end to end


def test_a_small_mlp_learns_by_plain_gradient_descent(device):
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((64, 2)).astype(np.float32)
    y_host = (x_host[:, 0] * x_host[:, 1] > 0).astype(np.int64)  # XOR of the signs
    x, y = mg.tensor(x_host, device=device), mg.tensor(y_host, device=device)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).to(device)
    first = None
    for _ in range(300):
        loss = F.cross_entropy(model(x), y)
        grads = loss.backward()
        for p in model.parameters():
            p.data -= 0.5 * grads[p]
        first = loss.item() if first is None else first
    assert loss.item() < 0.3 * first
    assert F.accuracy(model(x), y) > 0.9


# ---------------------------------------------------------------- buffers


class WithBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.register_buffer("count", mg.zeros(2))
        self.register_buffer("scratch", mg.ones(3), persistent=False)


def test_buffers_are_in_state_dict_but_not_parameters():
    m = WithBuffer()
    assert [n for n, _ in m.named_parameters()] == ["lin.weight", "lin.bias"]
    assert [n for n, _ in m.named_buffers()] == ["count", "scratch"]
    assert list(m.state_dict()) == ["count", "lin.weight", "lin.bias"]  # own first, as PyTorch
    outer = nn.Sequential(m)
    assert "0.count" in outer.state_dict()


def test_buffers_load_in_place_and_move_with_to(device):
    m = WithBuffer()
    count = m.count
    state = m.state_dict()
    state["count"] = np.array([5.0, 6.0])
    m.load_state_dict(state)
    assert m.count is count
    np.testing.assert_array_equal(m.count.numpy(), [5.0, 6.0])
    assert m.count.dtype == np.float32  # the buffer keeps its dtype
    m.to(device)
    assert m.count is count and m.count.device == device and m.scratch.device == device
    np.testing.assert_array_equal(m.count.numpy(), [5.0, 6.0])


def test_assigning_to_a_buffer_name_replaces_the_buffer():
    m = WithBuffer()
    m.count = mg.tensor([1.0, 2.0])
    np.testing.assert_array_equal(m.state_dict()["count"], [1.0, 2.0])
    with pytest.raises(TypeError, match="buffer 'count'"):
        m.count = np.zeros(2)
    with pytest.raises(TypeError, match="Tensor or None"):
        m.register_buffer("other", np.zeros(2))


def test_check_state_dict_changes_nothing_and_load_is_all_or_nothing():
    m = WithBuffer()
    before = m.state_dict()
    bad = dict(before, count=np.zeros(3))  # wrong shape, but lin.weight is fine
    bad["lin.weight"] = before["lin.weight"] + 1
    with pytest.raises(nn.StateDictError, match="wrong shape for count"):
        m.check_state_dict(bad)
    with pytest.raises(nn.StateDictError):
        m.load_state_dict(bad)
    np.testing.assert_array_equal(m.state_dict()["lin.weight"], before["lin.weight"])
    good = dict(before, count=np.array([1.0, 1.0]))
    prepared = m.check_state_dict(good)
    np.testing.assert_array_equal(m.count.numpy(), [0.0, 0.0])  # checking changed nothing
    m.apply_state_dict(prepared)
    np.testing.assert_array_equal(m.count.numpy(), [1.0, 1.0])


# ---------------------------------------------------------------- ModuleList, ModuleDict, apply


def test_module_list_registers_its_modules():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
            self.layers.append(nn.Linear(2, 1))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    m = Stack()
    names = [n for n, _ in m.named_parameters()]
    assert names[:2] == ["layers.0.weight", "layers.0.bias"] and names[-1] == "layers.2.bias"
    assert len(m.layers) == 3 and m.layers[-1].out_features == 1
    assert isinstance(m.layers[:2], nn.ModuleList) and len(m.layers[:2]) == 2
    assert m(mg.ones(4, 2)).shape == (4, 1)
    replacement = nn.Linear(2, 2, bias=False)
    m.layers[0] = replacement
    assert "layers.0.bias" not in dict(m.named_parameters())
    assert list(m.layers)[0] is replacement  # replaced in place, not moved to the end
    m.layers.insert(0, nn.Identity())
    assert isinstance(m.layers[0], nn.Identity) and len(m.layers) == 4
    with pytest.raises(IndexError, match="out of range"):
        m.layers[7]
    with pytest.raises(TypeError, match="holds Modules"):
        m.layers.extend([nn.Identity(), "relu"])
    assert len(m.layers) == 4  # nothing added
    with pytest.raises(NotImplementedError, match="iterate"):
        m.layers(mg.ones(1, 2))


def test_module_dict_registers_by_name():
    heads = nn.ModuleDict({"cls": nn.Linear(3, 2), "box": nn.Linear(3, 4)})
    assert list(heads) == ["cls", "box"] and "cls" in heads and len(heads) == 2
    assert [n for n, _ in heads.named_parameters()][0] == "cls.weight"
    heads["extra"] = nn.Linear(3, 1)
    assert heads["extra"].out_features == 1
    del heads["extra"]
    assert heads.keys() == ["cls", "box"]
    with pytest.raises(KeyError, match="no module 'nope'"):
        heads["nope"]


def test_apply_visits_children_first_then_self():
    seen = []
    net = Net()
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "Linear", "Block", "ReLU", "Linear", "Net"]

    def zero_linear(m):
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)

    net.apply(zero_linear)
    assert not net.first.weight.numpy().any() and not net.block.inner.weight.numpy().any()
