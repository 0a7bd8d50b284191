"""Device profiles: per-board onnxruntime and encoding settings, and their detection.

Only the standard library is imported here: the runtime imports this package. On-device tuning, which
needs the runtime, lives in `m2v_edge.device_profiles.tune` and is imported on demand.
"""

from m2v_edge.device_profiles.detect import (
    ENV_VAR,
    Candidate,
    Detection,
    Resolution,
    detect,
    explain_detection,
    explain_resolution,
    fit_to_machine,
    resolve_profile,
)
from m2v_edge.device_profiles.facts import CpuInfo, MachineFacts, parse_cpuinfo, read_facts
from m2v_edge.device_profiles.profile import EncodingSettings, MatchRules, Profile, SessionSettings
from m2v_edge.device_profiles.store import (
    builtin_profiles,
    list_profiles,
    load_profile,
    read_profile_file,
    render_profile,
    user_profile_dir,
    user_profiles,
    write_user_profile,
)
from m2v_edge.device_profiles.sysfiles import SourceRead

__all__ = [
    "ENV_VAR",
    "Candidate",
    "CpuInfo",
    "Detection",
    "EncodingSettings",
    "MachineFacts",
    "MatchRules",
    "Profile",
    "Resolution",
    "SessionSettings",
    "SourceRead",
    "builtin_profiles",
    "detect",
    "explain_detection",
    "explain_resolution",
    "fit_to_machine",
    "list_profiles",
    "load_profile",
    "parse_cpuinfo",
    "read_facts",
    "read_profile_file",
    "render_profile",
    "resolve_profile",
    "user_profile_dir",
    "user_profiles",
    "write_user_profile",
]
