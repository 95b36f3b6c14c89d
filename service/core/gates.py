"""Gate blocks of the recurrent layers, in PyTorch's order: LSTM (i, f, g, o), GRU (r, z, n), RNN one.

A recurrent weight stacks one (H, ·) block per gate: (gates * H, ·). The layer types
(``core.layers.recurrent``) and the PyTorch module replay (``core.torch.modules``) both read it.
"""

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
#: The forget gate's block in an LSTM (Keras's unit_forget_bias sets it to 1).
LSTM_FORGET = 1
