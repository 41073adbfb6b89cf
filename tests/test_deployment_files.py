"""The container and Kubernetes files describe what the code actually runs (no engine runs here, so
they are checked as files: .ci/run also has docker-compose validate the compose file)."""
import glob
import os
import tomllib

import urllib.parse

import yaml

from helpdesk_common.adapters.broker_users import SERVICES as BROKER_SERVICES, user_name
from stack import ROOT


def documents():
    for path in sorted(glob.glob(os.path.join(ROOT, "deploy", "k8s", "**", "*.yaml"), recursive=True)):
        with open(path) as stream:
            for document in yaml.safe_load_all(stream):
                if document:
                    yield os.path.relpath(path, ROOT), document


# Deployment name -> the nameko module it runs, and the folder of its config.
SERVICES = {"tickets": ("helpdesk_tickets", "tickets"), "intake": ("helpdesk_intake", "intake"),
            "routing": ("helpdesk_routing", "routing"), "kb-search": ("helpdesk_kb_search", "kb-search"),
            "analytics": ("helpdesk_analytics", "analytics")}


def compose():
    # BaseLoader: nameko registers a ${VAR:default} resolver on yaml's SafeLoader for the whole process,
    # which would substitute compose's own ${VAR:-default} syntax here.
    with open(os.path.join(ROOT, "docker-compose.yml")) as stream:
        return yaml.load(stream, Loader=yaml.BaseLoader)


def console_scripts(folder):
    with open(os.path.join(ROOT, folder, "pyproject.toml"), "rb") as stream:
        return tomllib.load(stream)["project"].get("scripts", {})


def test_every_manifest_parses_and_names_its_kind():
    found = list(documents())
    assert found, "no Kubernetes manifests found"
    for path, document in found:
        assert document.get("kind") and document.get("apiVersion"), path


def test_every_deployment_has_probes_resources_and_a_command_that_exists():
    deployments = [d for _, d in documents() if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} >= {"gateway", *SERVICES}
    for deployment in deployments:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container.get("readinessProbe") and container.get("livenessProbe"), container["name"]
            assert container.get("resources", {}).get("limits"), container["name"]
    for name, (module, folder) in SERVICES.items():
        deployment = next(d for d in deployments if d["metadata"]["name"] == name)
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        # the module the service lives in, and a config file the image has
        assert args == ["nameko", "run", f"{module}.service", "--config", f"/app/services/{folder}/config.yaml"], name
        assert os.path.exists(os.path.join(ROOT, "services", folder, module, "service.py")), name


def test_every_migration_job_runs_a_console_script_of_its_package():
    jobs = {d["metadata"]["name"]: d for _, d in documents() if d["kind"] == "Job"}
    assert set(jobs) >= {f"{name}-migrate" for name in [*SERVICES, "gateway"]}
    for name, (_, folder) in SERVICES.items():
        args = jobs[f"{name}-migrate"]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[0] in console_scripts(os.path.join("services", folder)), (name, args)


def test_compose_file_runs_every_service_with_the_pinned_constraints():
    services = compose()["services"]
    assert {"rabbitmq", "postgres", "elasticsearch", "gateway", *SERVICES} <= set(services)
    for name in [*SERVICES, "gateway"]:
        assert "container_name" not in services[name], f"{name}: a fixed name would prevent --scale"
        assert f"{name}-migrate" in services, name
    builds = {name: service["build"] for name, service in services.items() if "build" in service}
    dockerfiles = {build["dockerfile"] for build in builds.values()}
    assert dockerfiles == {"deploy/service.Dockerfile", "gateway/Dockerfile"}  # one template for every service
    for name, (module, folder) in SERVICES.items():  # each built from it with its own folder and package
        args = builds[f"{name}-migrate"]["args"]
        assert (args["SERVICE"], args["PACKAGE"]) == (folder, module), name
        assert os.path.isfile(os.path.join(ROOT, "services", folder, "config.yaml")), name
    for dockerfile in dockerfiles:
        with open(os.path.join(ROOT, dockerfile)) as stream:
            assert "-c constraints.txt" in stream.read(), dockerfile


def test_every_compose_migration_runs_a_console_script_of_its_package():
    services = compose()["services"]
    migrations = {name: service for name, service in services.items() if name.endswith("-migrate")}
    assert set(migrations) >= {f"{name}-migrate" for name in [*SERVICES, "gateway"]}
    for name, service in migrations.items():
        build = service["build"]  # the package the image installs: the template's SERVICE, or the gateway
        folder = os.path.join("services", build["args"]["SERVICE"]) if "args" in build else \
            os.path.dirname(build["dockerfile"])
        assert service["command"][0] in console_scripts(folder), (name, service["command"])
        # the service itself runs the image the migration builds
        assert services[name.removesuffix("-migrate")]["image"] == service["image"], name


def test_compose_databases_and_scrape_jobs_cover_every_service():
    services = compose()["services"]
    databases = services["postgres"]["environment"]["HELPDESK_DATABASES"].split()
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if key.endswith("_DB_URL"):
                assert value.rsplit("/", 1)[-1].rstrip("}") in databases, (name, key)
    with open(os.path.join(ROOT, "deploy", "prometheus", "prometheus.yml")) as stream:
        jobs = {job["job_name"] for job in yaml.safe_load(stream)["scrape_configs"]}
    assert jobs >= {"gateway", *SERVICES}
    health = services["gateway"]["environment"]["HELPDESK_SERVICES"]
    assert set(health.split(":-", 1)[-1].rstrip("}").split(",")) == {module.removeprefix("helpdesk_") for module, _ in SERVICES.values()}  # nameko service names


def test_every_kubernetes_service_connects_to_the_broker_as_its_own_user():
    """As in docker-compose.yml: one broker user per service, so a taken-over pod cannot publish another
    service's events; the Secret's example names each user as helpdesk_common.adapters.broker_users does."""
    secret = next(d for path, d in documents() if d["kind"] == "Secret")["stringData"]
    deployments = {d["metadata"]["name"]: d for _, d in documents() if d["kind"] == "Deployment"}
    assert {name.replace("-", "_") for name in deployments} == set(BROKER_SERVICES)
    keys = set()
    for name, deployment in deployments.items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            env = {item["name"]: item for item in container.get("env", [])}
            key = env["HELPDESK_AMQP_URI"]["valueFrom"]["secretKeyRef"]["key"]
            assert key == f"HELPDESK_AMQP_URI_{name.replace('-', '_').upper()}", (name, key)
            keys.add(key)
            user = urllib.parse.urlsplit(secret[key]).username
            assert user == user_name(name.replace("-", "_")), (name, user)
    assert len(keys) == len(deployments)  # no two services share a credential
    assert "HELPDESK_AMQP_URI" not in secret  # the shared credential is gone
    passwords = dict(item.split("=", 1) for item in secret["HELPDESK_BROKER_PASSWORDS"].split(","))
    assert set(passwords) == set(BROKER_SERVICES)
    for service, password in passwords.items():  # the Job makes each user with the password its pod uses
        assert urllib.parse.urlsplit(secret[f"HELPDESK_AMQP_URI_{service.upper()}"]).password == password


def test_the_broker_users_job_runs_before_the_services_with_the_administrators_credentials():
    jobs = {d["metadata"]["name"]: d for _, d in documents() if d["kind"] == "Job"}
    container = jobs["broker-users"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] in console_scripts("common")
    assert {item["name"] for item in container["env"]} >= {"HELPDESK_RABBIT_API", "HELPDESK_BROKER_PASSWORDS"}
    with open(os.path.join(ROOT, "deploy", "k8s", "migrate", "kustomization.yaml")) as stream:
        images = {image["name"] for image in yaml.safe_load(stream)["images"]}
    job_images = {c["image"].split(":")[0] for d in jobs.values() for c in d["spec"]["template"]["spec"]["containers"]}
    assert job_images <= images  # every image a Job runs has its tag set by the kustomization
