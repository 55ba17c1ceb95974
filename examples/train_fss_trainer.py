"""Train YOLO11n from scratch with FSS through `FSSTrainer(overrides=...)`, on a small generated dataset (offline).

    python examples/train_fss_trainer.py [--epochs 2] [--out runs/examples]
"""

import argparse

from ultralytics_fss import FSSTrainer
from ultralytics_fss.synthetic import make_dataset

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--out", default="runs/examples")
args = parser.parse_args()

data = make_dataset(f"{args.out}/data", images=40, imgsz=96)  # or your own data.yaml
trainer = FSSTrainer(
    overrides=dict(
        model="yolo11n.yaml",  # any YOLO detection YAML or .pt
        data=str(data),
        epochs=args.epochs,
        imgsz=96,
        batch=8,
        device="cpu",
        project=args.out,
        name="fss_trainer",
        exist_ok=True,
        plots=False,
        fss_beta=6.0,  # FSS hyperparameters are ordinary arguments: fss_alpha, fss_beta, fss_u, fss_q, fss_norm, ...
    )
)
trainer.train()
print(f"weights: {trainer.best}")
