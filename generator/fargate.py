"""Fargate's task-size table: the only cpu/memory pairs ECS accepts.

https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
"""

GIB = 1024


def _steps(first_gib: int, last_gib: int, step_gib: int) -> tuple[int, ...]:
    return tuple(gib * GIB for gib in range(first_gib, last_gib + 1, step_gib))


MEMORY_BY_CPU: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: _steps(1, 4, 1),
    1024: _steps(2, 8, 1),
    2048: _steps(4, 16, 1),
    4096: _steps(8, 30, 1),
    8192: _steps(16, 60, 4),
    16384: _steps(32, 120, 8),
}

CPU_VALUES: tuple[int, ...] = tuple(MEMORY_BY_CPU)
MEMORY_VALUES: tuple[int, ...] = tuple(sorted({m for ms in MEMORY_BY_CPU.values() for m in ms}))


def is_valid_size(cpu: int, memory: int) -> bool:
    return memory in MEMORY_BY_CPU.get(cpu, ())


def describe_valid_memory(cpu: int) -> str:
    values = MEMORY_BY_CPU[cpu]
    if len(values) <= 4:
        return ", ".join(map(str, values))
    return f"{values[0]}..{values[-1]} in steps of {values[1] - values[0]}"
