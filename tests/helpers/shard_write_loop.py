"""Run by the sharded SIGKILL test: writes generations of 3 shards, alternating between two
known archives (sizes A and B articles), until it is killed. Says "ready" once the first
generation is whole."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from indexer import shards  # noqa: E402
from tests.helpers import corpus  # noqa: E402

index_path = Path(sys.argv[1])
sizes = [int(x) for x in sys.argv[2].split(",")]
archives = [corpus.archive(n, seed=i) for i, n in enumerate(sizes)]
shards.write(index_path, archives[0], 3, corpus.settings())
print("ready", flush=True)
i = 1
while True:
    shards.write(index_path, archives[i % len(archives)], 3, corpus.settings())
    i += 1
