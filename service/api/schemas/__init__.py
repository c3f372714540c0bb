"""Request and response bodies of the HTTP API (pydantic), separate from the SQL models
(service/db/models.py); one module per group of routes."""

from service.api.schemas.datasets import (  # noqa: F401
    DatasetList,
    DatasetOut,
    OwnerStorage,
    StorageOut,
)
from service.api.schemas.jobs import (  # noqa: F401
    JobCreate,
    JobDetail,
    JobList,
    JobSummary,
    MetricPoint,
    MetricsOut,
    Progress,
    Resources,
    Series,
    Tag,
    aware,
    job_detail,
    job_summary,
    progress_of,
)
from service.api.schemas.results import (  # noqa: F401
    ActiveUnits,
    ArtifactList,
    ArtifactOut,
    Disentanglement,
    MutualInformation,
    RateDistortionOut,
    SampleQuality,
    SamplesRequest,
    TrajectoryPoint,
)
from service.api.schemas.sweeps import (  # noqa: F401
    CompareOut,
    FrontierOut,
    SweepCreate,
    SweepDetail,
    SweepJob,
    SweepList,
    SweepProgress,
    SweepSummary,
)
from service.api.schemas.users import (  # noqa: F401, E402
    Me,
    NewToken,
    NewUser,
    TokenCreate,
    TokenOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
