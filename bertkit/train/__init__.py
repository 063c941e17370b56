"""Training: AdamW + warmup/decay schedule (optim), the one loop (loop), exact-resume checkpoints
(checkpointing), torchrun/DDP set-up (distributed), logs and curves (curves), and BERT
pretraining on top of them (pretrain)."""
