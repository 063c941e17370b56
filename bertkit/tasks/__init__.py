"""Fine-tuning tasks from the seed's "BERT model usage": sentence classification (sentiment),
sentence-pair classification (NLI), extractive QA and NER.

Each task module turns examples into features for its head, and model outputs back into
predictions and the task's official metric; `finetune.py` runs them through the shared loop.
"""
