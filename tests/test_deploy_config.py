"""The Kubernetes deployment in deploy/, loaded with Dagster's and dagster-k8s's own machinery.

No cluster: the instance of deploy/dagster.yaml is built for real (its PostgreSQL storage
swapped for SQLite in a temporary directory, kube config loading stubbed), and the Job that
its K8sRunLauncher would submit for a run is constructed and inspected. The manifests are
parsed into the Kubernetes client's models, which reject unknown or misspelt fields.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id

from assets.definitions import build_definitions
from tests.conftest import REPO

dagster_k8s = pytest.importorskip("dagster_k8s", reason="dagster-k8s (the k8s extra)")
dagster_postgres = pytest.importorskip("dagster_postgres", reason="the postgres extra")
kubernetes = pytest.importorskip("kubernetes")

DEPLOY = REPO / "deploy"
GPU_LIMIT = 2


def _deploy_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    return config


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The instance deploy/dagster.yaml describes, with SQLite storage and no cluster."""
    monkeypatch.setattr(dagster_k8s.launcher, "load_kubernetes_config", lambda **_: None)
    shutil.copyfile(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    ref = InstanceRef.from_dir(
        str(tmp_path),
        overrides={
            "storage": {"sqlite": {"base_dir": str(tmp_path / "storage")}},
            "compute_logs": {
                "module": "dagster._core.storage.local_compute_log_manager",
                "class": "LocalComputeLogManager",
                "config": {"base_dir": str(tmp_path / "logs")},
            },
        },
    )
    with dg.DagsterInstance.from_ref(ref) as built:
        yield built


def test_instance_config_passes_dagsters_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    config, custom_class = dagster_instance_config(str(DEPLOY))
    assert custom_class is None
    assert config["run_launcher"]["module"] == "dagster_k8s"
    # The storage section against dagster-postgres's own schema, its URL from the Secret.
    monkeypatch.setenv(
        "POSEFRAMER_DAGSTER_POSTGRES_URL", "postgresql+psycopg2://dagster:pw@postgres/dagster"
    )
    checked = process_config(
        resolve_to_config_type(dagster_postgres.DagsterPostgresStorage.config_type()),
        config["storage"]["postgres"],
    )
    assert checked.success and checked.value is not None, checked.errors
    assert checked.value["postgres_url"] == "postgresql+psycopg2://dagster:pw@postgres/dagster"


def test_instance_launches_runs_on_kubernetes_with_the_gpu_pool(instance: Any) -> None:
    launcher = instance.run_launcher
    assert isinstance(launcher, dagster_k8s.K8sRunLauncher)
    assert launcher.job_namespace == "poseframer"
    assert launcher.service_account_name == "poseframer-dagster"
    assert launcher.instance_config_map == "poseframer-dagster-instance"
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)

    concurrency = instance.get_concurrency_config()
    assert concurrency.pool_config.default_pool_limit == GPU_LIMIT
    assert concurrency.pool_config.pool_granularity.value == "op"
    assert concurrency.run_queue_config.max_concurrent_runs == GPU_LIMIT
    # The limit reaches the `gpu` pool itself, as the run queue will find it.
    assert instance.event_log_storage.initialize_concurrency_limit_to_default("gpu")
    assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == GPU_LIMIT


def test_gpu_is_the_only_pool_of_the_assets(tmp_path: Path, index_settings_for: Any) -> None:
    # `default_limit` is the `gpu` limit only while no asset uses another pool.
    defs = build_definitions(index_settings_for(tmp_path))
    graph = defs.resolve_asset_graph()
    pools: set[str] = set()
    for key in graph.get_all_asset_keys():
        pools.update(graph.get(key).pools or ())
    assert pools == {"gpu"}


def test_a_run_pod_gets_one_gpu_the_shared_home_and_the_settings(instance: Any) -> None:
    from dagster_k8s.job import construct_dagster_k8s_job

    launcher = instance.run_launcher
    run = DagsterRun(job_name="index_batches", run_id=make_new_run_id())
    context = launcher.get_container_context_for_run(run)
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image="poseframer:0.1.0", run_launcher=launcher),
        args=["dagster", "api", "execute_run", "{}"],
        job_name="dagster-run-test",
        pod_name="dagster-run-test",
        component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
    )
    pod = job.spec.template.spec
    (container,) = pod.containers
    assert str(container.resources.limits["nvidia.com/gpu"]) == "1"
    assert pod.node_selector == {"poseframer/pool": "gpu"}
    assert any(t.key == "nvidia.com/gpu" for t in pod.tolerations)
    assert pod.service_account_name == "poseframer-dagster"
    sources = {(e.config_map_ref or e.secret_ref).name for e in container.env_from}
    assert sources == {"poseframer-env", "poseframer-secrets"}
    # The run gets its instance (storage settings naming POSEFRAMER_DAGSTER_POSTGRES_URL, which
    # poseframer-secrets holds) in its arguments; DAGSTER_HOME is where it keeps local files.
    env = {e.name: e.value for e in container.env}
    assert env["DAGSTER_HOME"] == "/opt/dagster/dagster_home"
    assert {m.mount_path for m in container.volume_mounts} == {"/data/poseframer"}
    claims = {
        v.persistent_volume_claim.claim_name for v in pod.volumes if v.persistent_volume_claim
    }
    assert claims == {"poseframer-home"}


# ---------------------------------------------------------------- the manifests

_KINDS = {
    "Namespace": "V1Namespace",
    "ServiceAccount": "V1ServiceAccount",
    "Role": "V1Role",
    "RoleBinding": "V1RoleBinding",
    "PersistentVolumeClaim": "V1PersistentVolumeClaim",
    "Deployment": "V1Deployment",
    "Service": "V1Service",
}


def _manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((DEPLOY / resource).read_text()) if d)
    return docs


def test_manifests_are_valid_kubernetes_objects() -> None:
    from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

    docs = _manifests()
    assert docs
    for doc in docs:
        model = getattr(kubernetes.client, _KINDS[doc["kind"]])
        # Strict: an unknown or misspelt field raises.
        k8s_model_from_dict(model, k8s_snake_case_dict(model, doc))


def test_manifests_agree_with_the_launcher_config() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    launcher = _deploy_config()["run_launcher"]["config"]
    generated = {g["name"]: g for g in kustomization["configMapGenerator"]}
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True
    assert generated[launcher["instance_config_map"]]["files"] == ["dagster.yaml"]
    for name in launcher["env_config_maps"]:
        assert name in generated
    for generator in generated.values():
        for file in generator.get("files", []):
            assert (DEPLOY / file).is_file()
    docs = _manifests()
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("ServiceAccount", launcher["service_account_name"]) in names
    (claim,) = (v["persistentVolumeClaim"]["claimName"] for v in launcher["volumes"])
    assert ("PersistentVolumeClaim", claim) in names
    assert kustomization["namespace"] == launcher["job_namespace"]
    # The webserver and daemon load the code server the workspace names.
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    (server,) = (entry["grpc_server"] for entry in workspace["load_from"])
    assert ("Service", server["host"]) in names
    env = dict(item.split("=", 1) for item in generated["poseframer-env"]["literals"])
    assert env["POSEFRAMER_LANCEDB_URI"].startswith("s3://")
