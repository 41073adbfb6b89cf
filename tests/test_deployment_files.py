"""The container and Kubernetes files describe what the code actually runs (no engine runs here, so
they are checked as files: .ci/run also has docker-compose validate the compose file)."""
import glob
import os

import yaml

from stack import ROOT


def documents():
    for path in sorted(glob.glob(os.path.join(ROOT, "deploy", "k8s", "**", "*.yaml"), recursive=True)):
        with open(path) as stream:
            for document in yaml.safe_load_all(stream):
                if document:
                    yield os.path.relpath(path, ROOT), document


def test_every_manifest_parses_and_names_its_kind():
    found = list(documents())
    assert found, "no Kubernetes manifests found"
    for path, document in found:
        assert document.get("kind") and document.get("apiVersion"), path


def test_every_deployment_has_probes_resources_and_a_command_that_exists():
    deployments = [d for _, d in documents() if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} >= {"gateway", "tickets"}
    for deployment in deployments:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container.get("readinessProbe") and container.get("livenessProbe"), container["name"]
            assert container.get("resources", {}).get("limits"), container["name"]
    tickets = next(d for d in deployments if d["metadata"]["name"] == "tickets")
    args = tickets["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["nameko", "run", "tickets.service"]  # the module the service lives in


def test_compose_file_runs_every_service_with_the_pinned_constraints():
    with open(os.path.join(ROOT, "docker-compose.yml")) as stream:
        compose = yaml.safe_load(stream)
    assert {"rabbitmq", "postgres", "tickets", "gateway"} <= set(compose["services"])
    assert "container_name" not in compose["services"]["tickets"], "a fixed name would prevent --scale"
    for dockerfile in ("services/tickets/Dockerfile", "gateway/Dockerfile"):
        with open(os.path.join(ROOT, dockerfile)) as stream:
            assert "constraints.txt" in stream.read(), dockerfile
