"""Seconds per training epoch of RecBole 1.2.1's SASRec or GRU4Rec on
MovieLens-100k, at the sizes `because` trains by default, on CPU.

usage: recbole_bench.py MODEL ML100K_DIR EPOCHS THREADS WORK_DIR
prints: "<seconds per epoch> <epochs timed>"

RecBole's `quick_start` imports ray, which is not installed: Config,
create_dataset, data_preparation and get_trainer are driven directly, and
only training epochs are timed (no evaluation between them).
"""

import os
import sys
import time

model, ml100k, epochs, threads, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
os.environ["OMP_NUM_THREADS"] = str(threads)

import torch  # noqa: E402

torch.set_num_threads(threads)

from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.utils import get_model, get_trainer, init_seed  # noqa: E402

# MovieLens-100k as a RecBole atomic file.
data_dir = os.path.join(work, "ml-100k")
os.makedirs(data_dir, exist_ok=True)
inter = os.path.join(data_dir, "ml-100k.inter")
if not os.path.exists(inter):
    with open(os.path.join(ml100k, "ratings.csv")) as src, open(inter, "w") as out:
        out.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        next(src)
        for line in src:
            u, i, r, t = line.strip().split(",")[:4]
            out.write(f"{u}\t{i}\t{r}\t{t}\n")

common = {
    "data_path": work,
    "dataset": "ml-100k",
    "device": "cpu",
    "use_gpu": False,
    "seed": 42,
    "epochs": epochs,
    "loss_type": "CE",
    "train_neg_sample_args": None,
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
    "MAX_ITEM_LIST_LENGTH": 50,
    "show_progress": False,
    "checkpoint_dir": os.path.join(work, "saved"),
    "log_wandb": False,
}
sizes = {
    # because's defaults: dim 64, 2 blocks of 2 heads, ffn 256, dropout 0.2, batch 128.
    "SASRec": {
        "hidden_size": 64,
        "inner_size": 256,
        "n_layers": 2,
        "n_heads": 2,
        "hidden_dropout_prob": 0.2,
        "attn_dropout_prob": 0.2,
        "train_batch_size": 128,
        "learning_rate": 0.001,
    },
    # because's defaults: dim 64, batch 64, dropout 0.3, learning rate 0.002.
    "GRU4Rec": {
        "embedding_size": 64,
        "hidden_size": 64,
        "num_layers": 1,
        "dropout_prob": 0.3,
        "train_batch_size": 64,
        "learning_rate": 0.002,
    },
}
config = Config(model=model, config_dict={**common, **sizes[model]})
init_seed(config["seed"], config["reproducibility"])
dataset = create_dataset(config)
train_data, valid_data, test_data = data_preparation(config, dataset)
net = get_model(config["model"])(config, train_data.dataset).to(config["device"])
trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
times = []
for epoch in range(epochs):
    start = time.perf_counter()
    trainer._train_epoch(train_data, epoch, show_progress=False)
    times.append(time.perf_counter() - start)
print(f"{min(times):.3f} {len(times)}")
