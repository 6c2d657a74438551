"""The span head: shapes, padding, the loss (mean of start and end cross-entropy) and that it learns, on a tiny
random encoder's DLFA-fused sequence of real XQuAD windows."""
import pytest
import torch
from torch import nn

from dlfa.data.qa import read_squad_json, xquad_files
from dlfa.data.qa_features import encode_qa, pad_windows
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


def test_span_head_on_a_dlfa_fused_tiny_encoder_learns(data_root, tiny_encoder, one_thread):
    from dlfa.model.encoders import load_encoder

    loaded = load_encoder(tiny_encoder)
    examples = read_squad_json(xquad_files(data_root / "qa" / "xquad")["en"], "en")[:8]
    windows = encode_qa(examples, loaded.tokenizer, max_length=96, doc_stride=32, max_question_tokens=24).features
    answered = [w for w in windows if w["start_positions"]][:8]
    batch = {key: torch.from_numpy(array) for key, array in pad_windows(answered, loaded.tokenizer.pad_token_id).items()}
    encoder = loaded.model
    encoder.get_input_embeddings().weight.requires_grad_(False)
    config = encoder.config
    aggregation = build_aggregation("dlfa", config.hidden_size, config.num_hidden_layers, 2, 4)
    head = SpanHead(config.hidden_size)

    def forward():
        hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         output_hidden_states=True).hidden_states
        fused = aggregation(tuple(hidden), batch["attention_mask"]).sequence  # B × T × H
        return head(fused, batch["attention_mask"], batch["start_positions"], batch["end_positions"])

    torch.manual_seed(0)
    first = forward()
    b, t = batch["input_ids"].shape
    assert first.start_logits.shape == first.end_logits.shape == (b, t) and b == 8
    assert torch.log(torch.tensor(float(t // 2))) < first.loss < torch.log(torch.tensor(float(t))) + 1  # ~uniform
    parameters = [p for module in (encoder, aggregation, head) for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=3e-3)
    first.loss.backward()
    assert head.qa_outputs.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in aggregation.parameters())
    optimizer.step()
    for _ in range(40):
        optimizer.zero_grad()
        out = forward()
        out.loss.backward()
        optimizer.step()
    assert out.loss.item() < 0.3 * first.loss.item()  # it fits the 8 answers' positions
    hits = (out.start_logits.argmax(-1) == batch["start_positions"]).float().mean()
    assert hits >= 0.75
