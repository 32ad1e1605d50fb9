import minigrad as mg


def test_backward_of_a_tiny_expression(device):
    x = mg.tensor([[1.0, 2.0]], requires_grad=True, device=device)
    grads = (x * x).sum().backward()
    assert grads[x].tolist() == [[2.0, 4.0]]
