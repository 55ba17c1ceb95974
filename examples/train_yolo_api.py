"""Train with the familiar `YOLO(...).train(...)` call, handing it FSSTrainer (offline, generated data).

    python examples/train_yolo_api.py [--epochs 2] [--out runs/examples]
"""

import argparse

from ultralytics import YOLO

from ultralytics_fss import FSSTrainer
from ultralytics_fss.synthetic import make_dataset

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--out", default="runs/examples")
args = parser.parse_args()

data = make_dataset(f"{args.out}/data", images=40, imgsz=96)
model = YOLO("yolo11n.yaml")
model.train(trainer=FSSTrainer, data=str(data), epochs=args.epochs, imgsz=96, batch=8, device="cpu",
            project=args.out, name="yolo_api", exist_ok=True, plots=False, fss_norm="target")

# The trained model is a plain Ultralytics model: predict, val and export as usual (no FSS needed at inference).
results = model.predict(sorted((data.parent / "images" / "val").glob("*.png"))[0], imgsz=96, verbose=False)
print(f"predicted {len(results[0].boxes)} boxes")
