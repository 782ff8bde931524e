"""Knowledge distillation on Keras 3, built on `keras.distillation`.

Example:

```python
import tfopt
distiller = tfopt.distillation.Distiller(teacher, student, "soft", alpha=0.7)
distiller.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
distiller.fit(x, y, epochs=5, callbacks=[tfopt.distillation.DistillationScheduler(
    temperature=tfopt.distillation.LinearSchedule(8.0, 2.0, transition_epochs=4))])
student = distiller.student
```
"""

from tfopt.distillation import losses
from tfopt.distillation.callbacks import DistillationScheduler, LinearSchedule
from tfopt.distillation.distiller import Distiller
from tfopt.distillation.losses import (
    FeatureDistillation,
    HardDistillation,
    MSEDistillation,
    SoftDistillation,
)

__all__ = [
    "DistillationScheduler",
    "Distiller",
    "FeatureDistillation",
    "HardDistillation",
    "LinearSchedule",
    "MSEDistillation",
    "SoftDistillation",
    "losses",
]
