"""Generated topologies shared by the benchmark (benchmarks/generator_bench.py) and the
scale tests (tests/scale/): one generator, so what is measured is what is tested.

Every function is deterministic: the same arguments give the same dict (and, through
`to_yaml`, the same bytes), whatever the Python version or machine.
"""
from __future__ import annotations

import random

import yaml

SIZES = [(256, 512), (512, 1024), (1024, 2048), (2048, 4096), (4096, 8192)]
HUB = "auth"


def layered_topology(services: int = 300, *, hub_callers: int = 55, layers: int = 5,
                     public_every: int = 10, mutual_pairs: int = 12, seed: int = 9,
                     app: str = "scale") -> dict:
    """A layered service mesh, as a topology.yaml document (a dict).

    - `services` services in `layers` layers (layer 0 = the edge); a service calls 3 to 5
      others, in deeper layers; the deepest layer calls sideways within its own layer, so
      every service has 3 to 5 callees and the graph has longer cycles there;
    - one hub, `auth`, in the deepest layer, called by exactly `hub_callers` services
      (no random pick ever adds a caller to it);
    - `mutual_pairs` pairs of services that call each other, in the middle layers;
    - every `public_every`-th service is public (about 10% by default), with its own
      health check path;
    - environment: LOG_LEVEL everywhere (shared name, varied value), one variable per
      layer (LAYER<k>_POOL_SIZE), FEATURE_FLAGS on every 3rd service and DB_NAME with a
      per-service value on every 4th: a handful of distinct names, so service.yaml keeps
      well inside the 200-parameter quota.

    Callees are picked, among a random sample, with the fewest callers so far, so that no
    service but the hub gets near the security-group rules quota.
    """
    if services < 12:
        raise ValueError("a layered topology needs at least 12 services")
    rng = random.Random(seed)
    names = [HUB] + [f"svc{i:03d}" for i in range(1, services)]
    # layer of each service: contiguous blocks; the hub is put in the deepest layer.
    per_layer = services // layers
    layer_of = {}
    for index, name in enumerate(names[1:], start=0):
        layer_of[name] = min(index // per_layer, layers - 1)
    layer_of[HUB] = layers - 1
    members = {k: [n for n in names if layer_of[n] == k] for k in range(layers)}
    callers_of = {name: 0 for name in names}
    calls: dict[str, list[str]] = {name: [] for name in names}

    def add(caller: str, callee: str) -> None:
        calls[caller].append(callee)
        callers_of[callee] += 1

    # The hub's callers: spread over every layer above the deepest, fixed by the seed.
    upper = [n for n in names if layer_of[n] < layers - 1]
    hub_callers = min(hub_callers, len(upper))
    for name in sorted(rng.sample(upper, hub_callers), key=names.index):
        add(name, HUB)

    # Mutual pairs in the middle layers (both directions count as calls).
    middle = [n for n in names if 0 < layer_of[n] < layers - 1 and n != HUB]
    pair_pool = rng.sample(middle, min(len(middle) // 2 * 2, 2 * mutual_pairs))
    for a, b in zip(pair_pool[0::2], pair_pool[1::2]):
        add(a, b)
        add(b, a)

    for name in names:
        wanted = rng.choice([3, 4, 5])
        layer = layer_of[name]
        if layer < layers - 1:
            # Mostly the next layer, sometimes any deeper one.
            deeper = [n for n in names if layer_of[n] > layer and n != HUB]
            near = [n for n in deeper if layer_of[n] == layer + 1]
        else:
            # The deepest layer calls the next few of its own layer (wrapping round).
            own = members[layer]
            at = own.index(name)
            deeper = [own[(at + step) % len(own)] for step in range(1, len(own))]
            deeper = [n for n in deeper if n != HUB]
            near = deeper[:8]
        while len(calls[name]) < wanted:
            pool = near if rng.random() < 0.75 else deeper
            choices = [n for n in pool if n != name and n not in calls[name]]
            if not choices:
                choices = [n for n in deeper if n != name and n not in calls[name]]
            sample = rng.sample(choices, min(6, len(choices)))
            add(name, min(sample, key=lambda n: (callers_of[n], names.index(n))))

    result = {}
    for index, name in enumerate(names):
        cpu, memory = SIZES[index % len(SIZES)]
        desired = 1 + index % 3
        service: dict = {
            "port": [8080, 8000, 9000, 3000][index % 4],
            "cpu": cpu,
            "memory": memory,
            "desired_count": desired,
            "scaling": {"min": desired, "max": desired + 4, "cpu_target": 60 + index % 20},
            "calls": calls[name],
        }
        if index % public_every == 1:
            service["public"] = True
            service["health_check_path"] = "/health"
        env = {"LOG_LEVEL": ["info", "debug", "warning"][index % 3],
               f"LAYER{layer_of[name]}_POOL_SIZE": str(4 + index % 13)}
        if index % 3 == 0:
            env["FEATURE_FLAGS"] = f"beta-{index},fast-path"
        if index % 4 == 0:
            env["DB_NAME"] = f"{name}_db"
        service["environment"] = env
        result[name] = service
    return {"app": app, "namespace": f"{app}.internal", "services": result}


def big_topology(services: int, seed: int = 100) -> dict:
    """The benchmark's earlier large topology: an acyclic call graph with fan-out 0-3 (a
    few hubs called by many), every 10th service public, shared and per-service
    environment variables, mixed Fargate sizes, ports and scaling bounds."""
    rng = random.Random(seed)
    names = [f"svc{i:03d}" for i in range(services)]
    hubs = names[-max(3, services // 20):]  # auth, config, ... called by many
    result = {}
    for i, name in enumerate(names):
        cpu, memory = SIZES[i % len(SIZES)]
        desired = 1 + i % 3
        service: dict = {
            "port": rng.choice([8080, 8000, 9000, 3000]),
            "cpu": cpu,
            "memory": memory,
            "desired_count": desired,
            "scaling": {"min": desired, "max": desired + 4, "cpu_target": 60 + i % 20},
        }
        later = [n for n in names[i + 1:] if n not in hubs] or names[i + 1:]
        calls = rng.sample(later, min(len(later), rng.choice([0, 1, 1, 2, 3])))
        calls += [h for h in hubs if h != name and h not in calls and rng.random() < 0.15
                  and names.index(h) > i]
        if calls:
            service["calls"] = calls
        if i % 10 == 0:
            service["public"] = True
            service["health_check_path"] = "/health"
        env = {}
        if i % 2 == 0:
            env["LOG_LEVEL"] = rng.choice(["info", "debug", "warning"])
        if i % 3 == 0:
            env["FEATURE_FLAGS"] = f"beta-{i},fast-path"
        if i % 7 == 0:
            env["DB_HOST"] = f"db-{i}.internal"
        if env:
            service["environment"] = env
        result[name] = service
    return {"app": "big", "namespace": "big.internal", "services": result}


def to_yaml(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False)
