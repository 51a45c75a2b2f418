#!/usr/bin/python3
"""Writes the tokenizer test's oracle with the SentencePiece library itself.

    tests/data/tokenizer/make_fixture.py [FORTUNES_DIR]

Needs Debian's python3-sentencepiece (0.1.97) and a real text: the fortune
files (fortunes-min / fortune-mod, /usr/share/games/fortunes). Writes, beside
this script:
  bpe.model   a BPE model trained with Gemma's settings (byte fallback,
              identity normalizer, no dummy prefix, whitespace kept, digits
              split, user-defined and control symbols, pad/eos/bos/unk = 0..3)
  cases.txt   one case per line (the format is in README.md): SentencePiece's
              ids for held-out fortune lines and for generated odd Unicode, and
              its text for random id sequences (byte pieces included)
  tokenizer.json
              bpe.model as Hugging Face's tokenizers library stores it (what
              transformers' Gemma converter writes: the vocabulary, the merges
              of every piece into two pieces by score, added tokens, a
              Replace(" ", "▁") normalizer, byte fallback)
  tiny.model  a 384-piece model of the same kind, for the tiny test models
  bpe_plain.model, cases_plain.txt
              the same for a model with SentencePiece's default options (a
              dummy prefix, extra spaces removed, no byte fallback)
"""
import json
import os
import random
import sys
import sentencepiece as spm

here = os.path.dirname(os.path.abspath(__file__))
fortunes = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/games/fortunes"
files = sorted(f for f in os.listdir(fortunes) if "." not in f and os.path.isfile(os.path.join(fortunes, f)))

train, held_out = [], []
for i, name in enumerate(files):  # every tenth file is held out, as in the QAT experiment
    with open(os.path.join(fortunes, name), encoding="utf-8", errors="replace") as f:
        lines = [l.rstrip("\n") for l in f if l.strip() and l.strip() != "%"]
    (held_out if i % 10 == 0 else train).extend(lines)

corpus = os.path.join(here, "corpus.tmp")
with open(corpus, "w", encoding="utf-8") as f:
    f.write("\n".join(train) + "\n")
def train(name, vocab_size=1500, character_coverage=0.9995, **options):
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(here, name), vocab_size=vocab_size, model_type="bpe",
        character_coverage=character_coverage, normalization_rule_name="identity", split_digits=True,
        minloglevel=2, hard_vocab_limit=False, **options)
    os.remove(os.path.join(here, name + ".vocab"))
    return spm.SentencePieceProcessor(model_file=os.path.join(here, name + ".model"))

gemma = dict(byte_fallback=True, add_dummy_prefix=False, remove_extra_whitespaces=False, pad_id=0, eos_id=1,
             bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>")
user_defined = ["<|turn>", "<turn|>", '<|"|>', "\n", "\t", "  "]
sp = train("bpe", allow_whitespace_only_pieces=True, control_symbols=["<mask>", "<|image|>"],
           user_defined_symbols=user_defined, **gemma)
# SentencePiece's defaults otherwise: a dummy prefix, extra spaces removed, no byte fallback.
sp_plain = train("bpe_plain", user_defined_symbols=["<|turn>"])
# Small enough for the tiny test models' 384 token rows, with Gemma 4's turn markers.
train("tiny", vocab_size=384, character_coverage=0.98, user_defined_symbols=["<|turn>", "<turn|>"], **gemma)
os.remove(corpus)

def hf_tokenizer_json(sp, user_defined):
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab = {p: i for i, p in enumerate(pieces)}
    merges = []
    for i, piece in enumerate(pieces):  # transformers' SentencePieceExtractor
        if not sp.is_control(i) and not sp.is_unknown(i) and not sp.is_byte(i):
            local = [(piece[:k], piece[k:], sp.get_score(i)) for k in range(1, len(piece))
                     if piece[:k] in vocab and piece[k:] in vocab]
            merges += sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]]))
    merges.sort(key=lambda m: m[2], reverse=True)
    added = [{"id": i, "content": pieces[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": sp.is_control(i) or sp.is_unknown(i)}
             for i in range(len(pieces)) if sp.is_control(i) or sp.is_unknown(i) or pieces[i] in user_defined]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[l, r] for l, r, _ in merges]},
    }

with open(os.path.join(here, "tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(hf_tokenizer_json(sp, user_defined), f, ensure_ascii=False, indent=1)

rng = random.Random(20261206)
odd = [
    "\u00e9\u0301", "e\u0301\u0302", "\u200d", "\ufeff", "\u00a0", "\u2581", "\u2581\u2581 ", "\ufffd",
    "\U0001f600", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f44d\U0001f3fd", "\U0001d54f",
    "\u4e2d\u6587\u5b57", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8", "\ud55c\uad6d\uc5b4",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u05e2\u05d1\u05e8\u05d9\u05ea", "\u0928\u092e\u0938\u094d\u0924\u0947",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35", "\U00010348", "\U0010fffd", "\ue000", "\u202e", "\u0000", "\u0007",
    "\x7f", "\u0085", "\u2028", "<|turn>", "<turn|>", "<|turn>user\n", "<|tur", "<turn|", "<|\"|>", "<mask>",
    "<|image|>", "<bos>", "<eos>", "<unk>", "<0x41>", "\n", "\n\n", "\t", "  ", "   ", " ", "1234567890",
    "3.14159", "\u00bd", "\u2160", "\uff21\uff22", "\u00df", "\u0130", "\u212b", "\u1e9e", "\\", "\"", "'",
]
words = " ".join(held_out).split(" ")

def odd_line():
    parts = []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        if r < 0.45:
            parts.append(rng.choice(words))
        elif r < 0.8:
            parts.append(rng.choice(odd))
        elif r < 0.9:
            parts.append(chr(rng.randint(0x20, 0xd7ff)))
        else:
            parts.append(chr(rng.randint(0xe000, 0x10ffff)))
        parts.append(rng.choice(["", " ", " ", "  ", "\n", "\t"]))
    return "".join(parts)

def escape(text):
    # UTF-8 bytes; a backslash and bytes below 0x20 or 0x7f escaped (as \\ and \xNN).
    out = bytearray()
    for b in text.encode("utf-8"):
        out += b"\\\\" if b == 0x5c else b"\\x%02x" % b if b < 0x20 or b == 0x7f else bytes([b])
    return bytes(out)

def write_cases(file, sp, texts, decodes):
    with open(os.path.join(here, file), "wb") as f:
        f.write(b"# SentencePiece 0.1.97; see README.md\n")
        for t in texts:
            f.write(b"E\t" + escape(t) + b"\t" + " ".join(map(str, sp.encode(t))).encode() + b"\n")
        n = sp.get_piece_size()
        for _ in range(decodes):
            ids = [rng.randrange(n) for _ in range(rng.randint(1, 16))]
            if rng.random() < 0.5 and sp.piece_to_id("<0x41>") != sp.unk_id():  # byte runs, valid and broken
                ids += [sp.piece_to_id("<0x%02X>" % b) for b in rng.choice(
                    [b"\xe2\x96\x81", b"\xf0\x9f\x98", b"\xc3", b"\x80\x80", "\u00e9x".encode(), b"\xff"])]
            f.write(b"D\t" + " ".join(map(str, ids)).encode() + b"\t" + escape(sp.decode(ids)) + b"\n")
    print(file, "pieces", sp.get_piece_size(), "cases", len(texts) + decodes)

write_cases("cases.txt", sp, [""] + held_out[:8000] + [odd_line() for _ in range(6000)], 1000)
write_cases("cases_plain.txt", sp_plain, held_out[:1000] + [odd_line() for _ in range(1000)], 300)
