from collections import Counter

from trainprove_diffusers.recipes import DOMAINS, SHADOW_PROMPT, VALIDATION_PROMPT, suspect_recipe

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_defender_templates_are_the_papers():
    assert SHADOW_PROMPT.format(label="cat") == "a cat"
    assert VALIDATION_PROMPT.format(label="cat") == "a photo of a cat"


def test_suspect_recipe_has_three_equal_parts_per_class():
    recipe = suspect_recipe(CIFAR10, per_part=400, seed=99)
    per_class = Counter()
    for item in recipe:
        per_class[(item.class_name, item.part)] += item.images
    for label in CIFAR10:
        assert per_class[(label, "class-name")] == per_class[(label, "multidomain")] == 400
        assert per_class[(label, "random-scale")] == 400
    cat = [r for r in recipe if r.class_name == "cat"]
    assert [r.prompt for r in cat][:2] == ["cat", "a photo of a cat"]
    assert [r.prompt for r in cat if r.part == "multidomain"] == [f"a {d} of a cat" for d in DOMAINS]
    assert cat[-1].prompt == "an image of a cat"


def test_random_scale_is_an_integer_from_1_to_5_per_class_and_reproducible():
    recipe = suspect_recipe(CIFAR10, per_part=10, seed=3)
    scales = {r.class_name: r.guidance for r in recipe if r.part == "random-scale"}
    assert all(s in {1.0, 2.0, 3.0, 4.0, 5.0} for s in scales.values())
    assert len(set(scales.values())) > 1
    assert all(r.guidance is None for r in recipe if r.part != "random-scale")
    again = {
        r.class_name: r.guidance
        for r in suspect_recipe(CIFAR10[::-1], per_part=10, seed=3)
        if r.part == "random-scale"
    }
    assert again == scales  # independent of class order
    other = {
        r.class_name: r.guidance
        for r in suspect_recipe(CIFAR10, per_part=10, seed=4)
        if r.part == "random-scale"
    }
    assert other != scales
