"""YAML config files with command-line overrides (lmkcore.config_file): the seed's precedence, clear errors."""
from dataclasses import dataclass, field

import pytest

from lmkcore.config_file import ConfigError, dump_yaml, from_yaml, parse_overrides, resolve
from lmkcore.methods.fgbg import FgBgConfig
from lmkcore.train import TrainConfig


@dataclass
class Toy:
    n: int = 3
    rate: float = 0.5
    name: str = "a"
    on: bool = False
    sizes: tuple[int, ...] = (1, 2)
    extra: list = field(default_factory=list)


def write(tmp_path, text: str):
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


def test_precedence_command_line_over_file_over_defaults(tmp_path):
    p = write(tmp_path, "n_landmarks: 12\nfixed_covar: 0.008\ndataset_path: from_file\nuse_fg_bg_mask: false\n")
    cfg = from_yaml(FgBgConfig, p, ["--dataset_path", "data/lspet.h5", "--save_path=out", "--use_fg_bg_mask",
                                    "n_landmarks=20"])
    assert cfg.n_landmarks == 20  # command line beats the file
    assert cfg.dataset_path == "data/lspet.h5" and cfg.save_path == "out"
    assert cfg.use_fg_bg_mask is True  # a bare --flag sets a bool
    assert cfg.fixed_covar == 0.008  # the file beats the default
    assert cfg.use_warped is FgBgConfig().use_warped and cfg.img_size == FgBgConfig().img_size  # defaults


def test_file_alone_and_no_file(tmp_path):
    assert from_yaml(FgBgConfig, write(tmp_path, "use_gan: true\n")).use_gan is True
    assert from_yaml(FgBgConfig) == FgBgConfig()
    assert from_yaml(FgBgConfig, write(tmp_path, "")) == FgBgConfig()  # an empty file changes nothing


def test_keys_are_split_between_method_and_trainer(tmp_path):
    p = write(tmp_path, "n_landmarks: 6\nsteps: 40\nbatch_size: 4\n")
    method, trainer = resolve([FgBgConfig, TrainConfig], p, ["--steps", "50", "--use_DDP"])
    assert (method.n_landmarks, method.use_DDP) == (6, True)
    assert (trainer.steps, trainer.batch_size) == (50, 4)


def test_each_class_takes_its_own_base_for_a_shared_name_unless_the_command_line_sets_both():
    from lmkcore.methods.selftrain import SelfTrainConfig

    bases = [{"batch_size": 16, "n_clusters": 50}, {"batch_size": 64}]
    method, trainer = resolve([SelfTrainConfig, TrainConfig], None, {"steps": 5}, bases=bases)
    assert (method.batch_size, method.n_clusters, trainer.batch_size, trainer.steps) == (16, 50, 64, 5)
    method, trainer = resolve([SelfTrainConfig, TrainConfig], None, {"batch_size": 4}, bases=bases)
    assert (method.batch_size, trainer.batch_size) == (4, 4)
    method, trainer = resolve([SelfTrainConfig, TrainConfig], None, {}, bases=[{}, {"batch_size": 64}])
    assert (method.batch_size, trainer.batch_size) == (SelfTrainConfig.batch_size, 64)  # no base: the default
    with pytest.raises(ConfigError, match=r"TrainConfig base: unknown key 'n_clusters'"):
        resolve([SelfTrainConfig, TrainConfig], None, {}, bases=[{}, {"n_clusters": 3}])


def test_unknown_yaml_key_names_the_file_and_the_key(tmp_path):
    p = write(tmp_path, "n_landmarks: 6\nn_landmark: 7\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: unknown key 'n_landmark'"):
        from_yaml(FgBgConfig, p)
    with pytest.raises(ConfigError, match=r"command line: unknown key 'lr_g'"):
        from_yaml(FgBgConfig, None, ["--lr_g", "1"])


def test_values_are_type_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"n_landmarks must be int .* got 'ten'"):
        from_yaml(FgBgConfig, write(tmp_path, "n_landmarks: ten\n"))
    with pytest.raises(ConfigError, match=r"use_gan must be bool"):
        from_yaml(FgBgConfig, write(tmp_path, "use_gan: 1\n"))  # no silent int -> bool
    for text in ("yes", "1", "on"):  # on the command line a boolean is true or false, any case
        with pytest.raises(ConfigError, match=r"--use_gan=.*expected a boolean: true or false"):
            from_yaml(FgBgConfig, None, [f"--use_gan={text}"])
    with pytest.raises(ConfigError, match=r"expected --name value or name=value, got 'yes'"):
        from_yaml(FgBgConfig, None, ["--use_gan", "yes"])  # a bare flag, then a stray word
    assert from_yaml(FgBgConfig, None, ["--use_gan", "TRUE", "use_warped=False"]).use_gan is True
    with pytest.raises(ConfigError, match=r"n must be int"):
        from_yaml(Toy, None, ["n=2.5"])
    assert from_yaml(Toy, write(tmp_path, "rate: 1e-4\n")).rate == 1e-4  # PyYAML: a string without the dot
    cfg = from_yaml(Toy, write(tmp_path, "rate: 1\nsizes: [3, 4, 5]\nextra: [x]\n"), ["name=007"])
    assert cfg.rate == 1.0 and isinstance(cfg.rate, float)  # an int where a float is asked for
    assert cfg.sizes == (3, 4, 5) and cfg.extra == ["x"]
    assert cfg.name == "007"  # string fields keep the text as given
    with pytest.raises(ConfigError, match=r"sizes must be"):
        from_yaml(Toy, write(tmp_path, "sizes: [a]\n"))


def test_not_a_mapping_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        from_yaml(Toy, write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        from_yaml(Toy, tmp_path / "nope.yaml")


def test_command_line_forms():
    assert parse_overrides(["--on", "--n", "4"], [Toy]) == {"on": True, "n": 4}
    assert parse_overrides(["--on", "false", "rate=0.5"], [Toy]) == {"on": False, "rate": 0.5}
    assert from_yaml(Toy, None, ["--rate", "1e-3"]).rate == 1e-3
    with pytest.raises(ConfigError, match="needs a value"):
        parse_overrides(["--n"], [Toy])
    with pytest.raises(ConfigError, match="expected --name value"):
        parse_overrides(["stray"], [Toy])


def test_dump_round_trip(tmp_path):
    cfg = FgBgConfig(n_landmarks=7, use_gan=True)
    p = tmp_path / "opt.yaml"
    dump_yaml(cfg, path=p)
    assert from_yaml(FgBgConfig, p) == cfg


def test_the_trainer_takes_method_fields_as_the_seeds_flags(tmp_path):
    """`python -m lmkcore.train --method fgbg --config FILE --dataset_path STORE --use_warped`: the seed's style,
    command line > file > defaults, with dataset_path naming the data the run trains on."""
    import json

    from lmkcore.train import main

    cfg = tmp_path / "fgbg.yaml"
    cfg.write_text("n_landmarks: 3\nimg_size: 32\nstem: 8\nchannels: 8\ndepth: 2\nn_filters: 4\ngen_base: 4\n"
                   "gen_max: 8\nfeature_levels: 2\nmask_base: 4\nmask_depth: 1\nbg_base: 4\nbg_depth: 1\n"
                   "rec_loss: l1\nuse_temporal: true\n")
    main(["--method", "fgbg", "--config", str(cfg), "--dataset_path", "procedural", "--use_temporal", "false",
          "--use_warped", "--n_landmarks=4", "--steps", "1", "--batch_size", "2", "--num_workers", "0", "--split", "val",
          "--out_dir", str(tmp_path / "runs"), "--run_name", "r", "--progress", "false", "--tensorboard", "false"])
    config = json.loads((tmp_path / "runs" / "r" / "config.json").read_text())["config"]
    assert (config["n_landmarks"], config["use_temporal"], config["use_warped"], config["img_size"]) == (4, False, True, 32)
    assert config["dataset_path"] == "procedural"
    with pytest.raises(SystemExit, match="unknown key 'no_such_field'"):
        main(["--method", "fgbg", "--no_such_field", "1"])
    with pytest.raises(SystemExit, match="n_landmarks"):  # name=value and flags mixed; a wrong type named
        main(["--method", "fgbg", "img_size=32", "--n_landmarks", "ten"])
