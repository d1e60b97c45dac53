"""The ceiling for `throughput.py --cli --ceiling`: the same requests, sent by nothing else.

    python bench/plain_client.py BASE_URL CONCURRENCY ITEMS [aiohttp|skillmix-http]

A client with no store, no prompts, no parsing and no report: `CONCURRENCY` workers
share ITEMS items, and each item is three requests in a row, as `skillmix run --k 2
--generation-rounds 1 --grading-rounds 1` sends them (student turn 1, turn 2 with the
conversation so far, one grading request with a JSON schema, which the delay server parses).
Bodies are about as long as skillmix's. It prints the two lines `measure_cli` times the
phases by (`run ...` when it starts sending, `...; cost $...` when it is done), so its
start-up, run and exit are measured exactly as the CLI's are.

With aiohttp (the default) it imports only aiohttp: what a hand-written research script
costs at best on this machine. With `skillmix-http` it sends through skillmix's own HTTP
client (`skillmix.models.http`, the one `skillmix run` uses, and nothing else of skillmix):
the floor of the run phase here, what the server and the machine allow whatever the
client does around its requests.
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp

TASK = "Write a short text about a topic, using each of these skills. " * 30  # ~1.9 kB
ANSWER = "Answer: The bench sentence. Explanation: x"
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "grade",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                name: {"type": "integer", "enum": [0, 1]}
                for name in ("skill_a", "skill_b", "topic", "coherence", "length")
            },
            "required": ["skill_a", "skill_b", "topic", "coherence", "length"],
            "additionalProperties": False,
        },
    },
}


def bodies(item: int) -> list[bytes]:
    """One item's three request bodies (made per item, as a client builds them)."""
    turn1 = [{"role": "user", "content": f"{TASK} Item {item}."}]
    turn2 = [*turn1, {"role": "assistant", "content": ANSWER}, {"role": "user", "content": TASK}]
    grade = [{"role": "user", "content": f"{TASK} Grade this text: {ANSWER}"}]
    common = {"model": "bench", "temperature": 0.7, "max_tokens": 256}
    return [
        json.dumps({**common, "messages": turn1}).encode(),
        json.dumps({**common, "messages": turn2}).encode(),
        json.dumps({**common, "messages": grade, "response_format": SCHEMA}).encode(),
    ]


async def main(base_url: str, concurrency: int, items: int) -> None:
    """Through aiohttp."""
    url = base_url + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        sys.stderr.write(f"run plain: {items} items at concurrency {concurrency}\n")

        async def worker(first: int) -> None:
            for item in range(first, items, concurrency):
                for body in bodies(item):
                    async with session.post(url, data=body, headers=headers) as response:
                        response.raise_for_status()
                        reply = await response.json()
                        reply["choices"][0]["message"]["content"]

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    sys.stderr.write(f"sent {3 * items} requests; cost $0\n")


async def main_skillmix_http(base_url: str, concurrency: int, items: int) -> None:
    """Through skillmix's HTTP client, as `skillmix run` sends (its OpenAI provider adds
    the JSON decoding of each answer, done here too)."""
    from skillmix.models.http import HttpClient

    client = HttpClient(base_url)
    headers = {"Content-Type": "application/json"}
    sys.stderr.write(f"run plain: {items} items at concurrency {concurrency}\n")

    async def worker(first: int) -> None:
        for item in range(first, items, concurrency):
            for body in bodies(item):
                response = await client.post("/chat/completions", body, headers, 600.0)
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
                json.loads(response.body)["choices"][0]["message"]["content"]

    try:
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    finally:
        await client.aclose()
    sys.stderr.write(f"sent {3 * items} requests; cost $0\n")


if __name__ == "__main__":
    transport = sys.argv[4] if len(sys.argv) > 4 else "aiohttp"
    run = {"aiohttp": main, "skillmix-http": main_skillmix_http}[transport]
    asyncio.run(run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
