"""torch.hub entrypoints, generated from the zoo registry.

``torch.hub.load(repo_dir, "titok_l32", source="local", pretrained=True)``; every registered
``arch.tag`` has an entrypoint ``arch`` (its default tag, or ``tag=...``) and ``arch__tag``.
"""
dependencies = ["torch", "torchvision", "torchaudio", "huggingface_hub", "safetensors", "einops",
                "vector_quantize_pytorch"]

import zoo as _zoo  # noqa: E402


def _make_entrypoint(entry_name: str, registry_name: str, by_arch: bool):
    info = _zoo.get_info(registry_name)

    def entrypoint(*, pretrained: bool = True, tag: str | None = None, **kwargs):
        name = f"{info.arch}.{tag}" if (by_arch and tag) else registry_name
        return _zoo.create_tokenizer(name, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entry_name
    entrypoint.__qualname__ = entry_name
    entrypoint.__doc__ = (f"{info.describe()}\n\nArgs:\n    pretrained: load the published weights "
                          f"(default True).\n" + ("    tag: another tag of this architecture.\n" if by_arch else "")
                          + "    **kwargs: passed to zoo.create_tokenizer.")
    return entrypoint


def _install_entrypoints() -> None:
    for _name in _zoo.list_tokenizers():
        _info = _zoo.get_info(_name)
        arch_entry = _info.arch
        if arch_entry not in globals():
            globals()[arch_entry] = _make_entrypoint(arch_entry, _zoo.get_info(_info.arch).name, by_arch=True)
        full_entry = _name.replace(".", "__").replace("-", "_")
        globals()[full_entry] = _make_entrypoint(full_entry, _name, by_arch=False)


_install_entrypoints()
