"""templates/pipeline.yaml (placeholder until the pipeline is built: see issue 4)."""
from troposphere import Template
from troposphere.cloudformation import WaitConditionHandle

from generator.topology import Topology


def build(topology: Topology) -> Template:
    template = Template(Description=f"{topology.app}: deployment pipeline (not built yet)")
    template.set_version("2010-09-09")
    template.add_resource(WaitConditionHandle("Placeholder"))
    return template
