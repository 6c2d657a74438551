"""The span head: shapes, padding, the loss (mean of start and end cross-entropy) and that it learns, on a tiny
random encoder's DLFA-fused sequence of real XQuAD windows."""
import numpy as np
import pytest
import torch
from torch import nn

from dlfa.data.qa import read_squad_json, xquad_files
from dlfa.data.qa_features import encode_qa, pad_windows
from dlfa.engine.qa_evaluate import evaluate_qa, predict_span_logits
from dlfa.model.fusion import build_aggregation
from dlfa.model.qa_head import SpanHead


def test_shapes_padding_and_loss_by_hand():
    torch.manual_seed(0)
    head = SpanHead(8)
    sequence = torch.randn(3, 5, 8)  # B × T × H
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    starts, ends = torch.tensor([1, 2, 0]), torch.tensor([3, 2, 0])
    out = head(sequence, mask, starts, ends)
    assert out.start_logits.shape == out.end_logits.shape == (3, 5)
    assert out.start_logits.dtype == torch.float32
    lowest = torch.finfo(torch.float32).min
    assert (out.start_logits[mask == 0] == lowest).all() and (out.end_logits[mask == 0] == lowest).all()
    raw_start, raw_end = head.qa_outputs(sequence).unbind(-1)
    assert torch.equal(out.start_logits[mask == 1], raw_start[mask == 1])
    expected = (nn.functional.cross_entropy(raw_start.masked_fill(mask == 0, lowest), starts)
                + nn.functional.cross_entropy(raw_end.masked_fill(mask == 0, lowest), ends)) / 2
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert head(sequence, mask).loss is None


def test_positions_outside_the_sequence_are_ignored():
    torch.manual_seed(0)
    head = SpanHead(8)
    sequence = torch.randn(2, 5, 8)
    out = head(sequence, None, torch.tensor([9, 1]), torch.tensor([2, 3]))  # 9 >= T: clamped to T, ignored
    start_only_second = nn.functional.cross_entropy(out.start_logits[1:], torch.tensor([1]))
    end_both = nn.functional.cross_entropy(out.end_logits, torch.tensor([2, 3]))
    assert out.loss.item() == pytest.approx(((start_only_second + end_both) / 2).item(), rel=1e-6)


@pytest.fixture
def one_thread():
    """Tensors this small run faster on one thread than on a thread pool that waits for a busy machine's cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinySpanModel(nn.Module):
    """A tiny random encoder, DLFA fusing its last layer with layer 2, and the span head."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        config = encoder.config
        self.aggregation = build_aggregation("dlfa", config.hidden_size, config.num_hidden_layers, 2, 4)
        self.head = SpanHead(config.hidden_size)

    def forward(self, input_ids, attention_mask, start_positions=None, end_positions=None):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        fused = self.aggregation(tuple(hidden.hidden_states), attention_mask).sequence  # B × T × H
        return self.head(fused, attention_mask, start_positions, end_positions)


@pytest.fixture(scope="module")
def one_window_questions(data_root, tiny_encoder):
    """Eight real XQuAD questions whose context fits one 256-token window, their windows and the encoder."""
    from dlfa.model.encoders import load_encoder

    loaded = load_encoder(tiny_encoder)
    examples = read_squad_json(xquad_files(data_root / "qa" / "xquad")["en"], "en")[:60]
    chosen, windows = [], []
    for example in examples:
        encoded = encode_qa([example], loaded.tokenizer, max_length=256, doc_stride=64, max_question_tokens=32)
        if len(encoded) == 1 and len(chosen) < 8:
            chosen.append(example)
            windows += encoded.features
    return chosen, windows, loaded


def test_span_head_on_a_dlfa_fused_tiny_encoder_learns_and_answers(one_window_questions, one_thread):
    examples, windows, loaded = one_window_questions
    pad = loaded.tokenizer.pad_token_id
    batch = {key: torch.from_numpy(array) for key, array in pad_windows(windows, pad).items()}
    loaded.model.get_input_embeddings().weight.requires_grad_(False)
    torch.manual_seed(0)
    net = TinySpanModel(loaded.model)
    first = net(**batch)
    b, t = batch["input_ids"].shape
    assert first.start_logits.shape == first.end_logits.shape == (b, t) and b == 8
    assert torch.log(torch.tensor(100.0)) < first.loss < torch.log(torch.tensor(float(t))) + 1  # about uniform
    before, _ = evaluate_qa(net, examples, windows, pad, torch.device("cpu"), bootstrap_samples=0)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=3e-3)
    net.train()
    first.loss.backward()
    assert net.head.qa_outputs.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.aggregation.parameters())
    optimizer.step()
    for _ in range(40):
        optimizer.zero_grad()
        out = net(**batch)
        out.loss.backward()
        optimizer.step()
    assert out.loss.item() < 0.3 * first.loss.item()  # it fits the 8 answers' positions
    # the evaluation loop maps the learned spans back to the answers' text (memorised: far above before)
    after, predictions = evaluate_qa(net, examples, windows, pad, torch.device("cpu"), bootstrap_samples=100)
    assert set(predictions) == {e.id for e in examples}
    assert after["span_f1"]["value"] >= 75.0 > before["span_f1"]["value"] + 40
    assert after["exact_match"]["n"] == 8 and after["exact_match"]["ci_low"] <= after["exact_match"]["value"]


def test_span_logits_do_not_depend_on_batching(one_window_questions, one_thread):
    examples, windows, loaded = one_window_questions
    torch.manual_seed(1)
    net = TinySpanModel(loaded.model)
    pad = loaded.tokenizer.pad_token_id
    one = predict_span_logits(net, windows, pad, torch.device("cpu"), batch_size=1)
    many = predict_span_logits(net, windows, pad, torch.device("cpu"), batch_size=5)  # padded, longest first
    for single, batched, window in zip(one[0] + one[1], many[0] + many[1], windows + windows):
        assert single.shape == (len(window["input_ids"]),)
        np.testing.assert_allclose(single, batched, rtol=1e-4, atol=1e-4)
